extension ObjectParser {
    /// Every VAR of the DATASEC of every global-data and arena section, in section order and by
    /// offset within a section. Static (and hidden) variables are listed too, marked static: they
    /// live in the same image and can be tuned before load like any other.
    func collectVariables() throws(ObjectError) -> [VariableSpec] {
        guard let btf else { return [] }
        var out: [VariableSpec] = []
        for ds in dataSections {
            guard let secID = datasecID(named: ds.name, in: btf),
                  case .dataSection(_, let vars)? = btf.type(secID)?.kind else { continue }
            var previous: (name: String, end: UInt64)?
            for v in vars {
                guard let t = btf.type(v.type), case .variable(let typeID, let linkage) = t.kind else { continue }
                // The kernel refuses a DATASEC whose variables leave the section; refuse it here so
                // nothing downstream indexes an image out of bounds.
                guard UInt64(v.offset) + UInt64(v.size) <= UInt64(ds.image.count) else {
                    throw .datasecFixup(datasec: ds.name, reason: "variable '\(btf.string(at: t.nameOffset))' [\(v.offset), +\(v.size)) lies outside the section's \(ds.image.count) bytes")
                }
                // It refuses overlapping variables too (sorted by offset, as they are by now). Here
                // they would multiply the work of showing the section: thousands of entries, each
                // covering all of a 64 MiB .bss.
                if v.size > 0, let previous, UInt64(v.offset) < previous.end {
                    throw .datasecFixup(datasec: ds.name, reason: "variable '\(btf.string(at: t.nameOffset))' at \(v.offset) overlaps '\(previous.name)', which ends at \(previous.end)")
                }
                let name = btf.string(at: t.nameOffset)
                if v.size > 0 { previous = (name, UInt64(v.offset) + UInt64(v.size)) }
                out.append(VariableSpec(
                    name: name, section: ds.name, offset: v.offset, size: v.size,
                    btfTypeID: typeID, typeName: btf.typeName(typeID),
                    isStatic: linkage == BTFVarLinkage.staticLinkage.rawValue, sectionKind: ds.kind))
            }
        }
        return out
    }
}
