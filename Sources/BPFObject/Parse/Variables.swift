extension ObjectParser {
    /// Every VAR of the DATASEC of every global-data and arena section, in section order and by
    /// offset within a section. Static (and hidden) variables are listed too, marked static: they
    /// live in the same image and can be tuned before load like any other.
    func collectVariables() -> [VariableSpec] {
        guard let btf else { return [] }
        var out: [VariableSpec] = []
        for ds in dataSections {
            guard let secID = btf.find(named: ds.name, kind: .dataSection),
                  case .dataSection(_, let vars)? = btf.type(secID)?.kind else { continue }
            for v in vars {
                guard let t = btf.type(v.type), case .variable(let typeID, let linkage) = t.kind else { continue }
                out.append(VariableSpec(
                    name: btf.string(at: t.nameOffset), section: ds.name, offset: v.offset, size: v.size,
                    btfTypeID: typeID, typeName: btf.typeName(typeID),
                    isStatic: linkage == BTFVarLinkage.staticLinkage.rawValue, sectionKind: ds.kind))
            }
        }
        return out
    }
}
