#if canImport(Glibc)
import Glibc
#endif
import BPFKernel
import BPFObject
import DepotCore
import DepotStore

/// Each service error mapped to one problem, once.
extension DepotError: HTTPProblemConvertible {
    public var problem: HTTPProblem {
        let detail = description
        switch self {
        case .invalidObject:
            return HTTPProblem(status: .unprocessableContent, type: "invalid-object", detail: detail)
        case .store(let e):
            switch e {
            case .objectNotFound, .revisionNotFound, .loadNotFound, .linkNotFound:
                return HTTPProblem(status: .notFound, type: "not-found", detail: detail)
            case .revisionConflict(_, let expected, let current):
                return HTTPProblem(status: .preconditionFailed, type: "stale-revision", detail: detail,
                                   extensions: [("expectedRevision", .int(Int64(expected))), ("currentRevision", .int(Int64(current)))])
            case .objectLoaded, .loadStillLoaded, .pinDirectoryInUse:
                return HTTPProblem(status: .conflict, type: "conflict", detail: detail)
            case .busy:
                return HTTPProblem(status: .serviceUnavailable, type: "busy", detail: detail, headers: ["Retry-After": "1"])
            case .invalidLimit:
                return HTTPProblem(status: .badRequest, type: "bad-parameter", detail: detail)
            case .emptyObject, .emptySectionName, .duplicateSection, .missingSection, .unexpectedSection,
                 .sectionSizeMismatch, .invalidKernelIDs, .emptyPinDirectory:
                return HTTPProblem(status: .unprocessableContent, type: "invalid-request", detail: detail)
            default:
                return HTTPProblem(status: .internalServerError, type: "store-failure", detail: detail)
            }
        case .unknownVariable(let name, _):
            return HTTPProblem(status: .unprocessableContent, type: "unknown-variable", detail: detail, extensions: [("variable", .string(name))])
        case .unknownSection(let name, _):
            return HTTPProblem(status: .notFound, type: "unknown-section", detail: detail, extensions: [("section", .string(name))])
        case .badValue(let e):
            var ext: [(String, JSONValue)] = []
            if case .encode(let enc) = e { ext = [("variable", .string(enc.path)), ("expectedType", .string(enc.typeName))] }
            if case .unknownVariable(let n) = e { ext = [("variable", .string(n))] }
            return HTTPProblem(status: .unprocessableContent, type: "bad-value", detail: detail, extensions: ext)
        case .imageWriteOutOfBounds:
            return HTTPProblem(status: .unprocessableContent, type: "out-of-bounds", detail: detail)
        case .emptyPatch:
            return HTTPProblem(status: .unprocessableContent, type: "empty-patch", detail: detail)
        case .load(let e):
            switch e {
            case .verifier(let v):
                return HTTPProblem(status: .unprocessableContent, type: "verifier-rejected", detail: detail,
                                   extensions: [("program", .string(v.programName)), ("errno", .int(Int64(v.errno))),
                                                ("log", .string(v.log)), ("logTruncated", .bool(v.logTruncated))])
            case .arenaAddressInUse:
                return HTTPProblem(status: .conflict, type: "arena-address-in-use", detail: detail)
            case .kernelLacks(let probe, _):
                var ext: [(String, JSONValue)] = [("feature", .string(probe.feature.rawValue)), ("kernel", .string(KernelVersion.release))]
                if let errno = probe.errno { ext.append(("errno", .int(Int64(errno)))) }
                return HTTPProblem(status: .unprocessableContent, type: "kernel-feature-missing", detail: detail, extensions: ext)
            case .readOnly, .unloaded:
                return HTTPProblem(status: .conflict, type: "conflict", detail: detail)
            case .unknownVariable, .unknownProgram:
                return HTTPProblem(status: .notFound, type: "not-found", detail: detail)
            default:
                return HTTPProblem(status: .unprocessableContent, type: "load-failed", detail: detail)
            }
        case .link(let e):
            switch e {
            case .unsupportedSection(let program, let section, let supported):
                return HTTPProblem(status: .unprocessableContent, type: "unsupported-hook", detail: detail,
                                   extensions: [("program", .string(program)), ("section", .string(section)),
                                                ("supported", .array(supported.map { .string($0) }))])
            case .missingTarget(_, let field, _):
                return HTTPProblem(status: .unprocessableContent, type: "missing-target", detail: detail, extensions: [("field", .string(field))])
            case .unknownProgram:
                return HTTPProblem(status: .notFound, type: "not-found", detail: detail)
            case .unknownInterface, .unknownCgroup, .unknownBinary, .unknownFunction, .unknownTracepoint, .unknownMap:
                return HTTPProblem(status: .unprocessableContent, type: "unknown-target", detail: detail)
            case .conflict(let hook, let holder):
                return HTTPProblem(status: .conflict, type: "hook-in-use", detail: detail,
                                   extensions: [("hook", .string(hook)), ("holder", .string(holder))])
            case .pin:
                return HTTPProblem(status: .internalServerError, type: "link-pin-failed", detail: detail)
            case .kernel(let b, _):
                var ext: [(String, JSONValue)] = []
                if let errno = b.errno { ext.append(("errno", .int(Int64(errno)))) }
                return HTTPProblem(status: .unprocessableContent, type: "attach-failed", detail: detail, extensions: ext)
            }
        case .linkNotAttached:
            return HTTPProblem(status: .conflict, type: "not-attached", detail: detail)
        case .loadNotActive:
            return HTTPProblem(status: .conflict, type: "not-loaded", detail: detail)
        case .unknownProgram:
            return HTTPProblem(status: .notFound, type: "not-found", detail: detail)
        case .readOnlyVariable:
            return HTTPProblem(status: .conflict, type: "read-only", detail: detail)
        case .liveValue:
            return HTTPProblem(status: .unprocessableContent, type: "bad-value", detail: detail)
        case .busy:
            return HTTPProblem(status: .serviceUnavailable, type: "busy", detail: detail, headers: ["Retry-After": "1"])
        case .arenaTooLarge(let requested, let limit):
            return HTTPProblem(status: .contentTooLarge, type: "arena-too-large", detail: detail,
                               extensions: [("arenaBytes", .uint(requested)), ("limit", .uint(limit))])
        case .arenaBudgetExhausted(let requested, let inUse, let limit):
            return HTTPProblem(status: .serviceUnavailable, type: "arena-budget-exhausted", detail: detail,
                               extensions: [("arenaBytes", .uint(requested)), ("inUse", .uint(inUse)), ("limit", .uint(limit))],
                               headers: ["Retry-After": "5"])
        case .signatureRequired:
            return HTTPProblem(status: .forbidden, type: "signature-required", detail: detail)
        case .badSignature:
            return HTTPProblem(status: .forbidden, type: "bad-signature", detail: detail)
        case .unknownMap(let name, _):
            return HTTPProblem(status: .notFound, type: "unknown-map", detail: detail, extensions: [("map", .string(name))])
        case .mapNotReadable(let name, let type):
            return HTTPProblem(status: .unprocessableContent, type: "map-not-readable", detail: detail,
                               extensions: [("map", .string(name)), ("mapType", .string(type))])
        case .badMapKey(let name, _):
            return HTTPProblem(status: .badRequest, type: "bad-key", detail: detail, extensions: [("map", .string(name))])
        case .badMapValue(let name, _):
            return HTTPProblem(status: .unprocessableContent, type: "bad-value", detail: detail, extensions: [("map", .string(name))])
        case .mapEntryNotFound(let name, _):
            return HTTPProblem(status: .notFound, type: "no-such-entry", detail: detail, extensions: [("map", .string(name))])
        case .mapWriteRefused(let name, _, _):
            return HTTPProblem(status: .preconditionFailed, type: "precondition-failed", detail: detail, extensions: [("map", .string(name))])
        case .mapOperation(let name, let e):
            var ext: [(String, JSONValue)] = [("map", .string(name))]
            if let errno = e.errno { ext.append(("errno", .int(Int64(errno)))) }
            switch e.errno {
            case EPERM?, EACCES?:
                return HTTPProblem(status: .conflict, type: "read-only", detail: detail, extensions: ext)
            case E2BIG?:
                return HTTPProblem(status: .conflict, type: "map-full", detail: detail, extensions: ext)
            default:
                return HTTPProblem(status: .unprocessableContent, type: "map-operation-failed", detail: detail, extensions: ext)
            }
        }
    }
}
