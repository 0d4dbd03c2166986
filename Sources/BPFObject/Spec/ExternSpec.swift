public struct ExternSpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A kernel function called from BPF (`__ksym` FUNC in `.ksyms`).
        case kfunc
        /// A kernel variable: typed (BTF id resolution) or typeless (kallsyms address).
        case ksym(typed: Bool)
        /// `__kconfig`: value placed at `offset` in the `.kconfig` map.
        case kconfig(offset: UInt32, size: UInt32)
    }

    public var name: String
    /// The name without a `___flavor` suffix, as looked up in the kernel.
    public var essentialName: String
    public var kind: Kind
    public var weak: Bool
    /// Symbol table index of the extern.
    public var symbolIndex: Int
    /// BTF id of the object's own VAR/FUNC for it.
    public var btfID: UInt32
    /// For kfuncs: the local FUNC_PROTO; for typed ksyms/kconfig: the variable's type.
    public var btfTypeID: UInt32

    public var kindName: String {
        switch kind {
        case .kfunc: "kfunc"
        case .ksym(let typed): typed ? "ksym" : "ksym_typeless"
        case .kconfig: "kconfig"
        }
    }
}
