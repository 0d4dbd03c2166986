import BPFObject
import DepotStore
import Foundation
import Synchronization

extension Depot {
    /// Appends one row to the audit trail; a row that cannot be written is reported on stderr
    /// (the request it describes has been answered already). Every 1,000th row prunes rows older
    /// than `limits.auditRetentionDays`.
    public func recordAudit(_ record: AuditRecord) {
        do { try store.appendAudit(record) } catch {
            FileHandle.standardError.write(Data("bpfdepot: audit row for request \(record.requestID) not written: \(error)\n".utf8))
            return
        }
        if auditRows.add(1, ordering: .relaxed).newValue % 1000 == 0 {
            _ = try? store.pruneAudit(retentionDays: limits.auditRetentionDays)
        }
    }

    /// Audit rows, newest first.
    public func audit(_ filter: AuditFilter) throws(DepotError) -> [AuditRecord] {
        try storeCall { () throws(StoreError) in try store.audit(filter) }
    }

    /// Applies the retention window now (at start-up).
    @discardableResult
    public func pruneAudit() throws(DepotError) -> Int {
        try storeCall { () throws(StoreError) in try store.pruneAudit(retentionDays: limits.auditRetentionDays) }
    }
}

extension AuditRecord {
    /// The row as `GET /v1/audit` shows it.
    public var json: JSONValue {
        let change: JSONValue = change.map { (try? JSONValue(parsing: $0)) ?? .string($0) } ?? .null
        return .object([
            ("id", .int(id)),
            ("at", .string(Timestamps.iso8601(at))),
            ("client", client.map { .string($0) } ?? .null),
            ("address", address.map { .string($0) } ?? .null),
            ("requestId", .string(requestID)),
            ("method", .string(method)),
            ("route", .string(route)),
            ("path", .string(path)),
            ("status", .int(Int64(status))),
            ("object", objectID.map { .string($0) } ?? .null),
            ("load", loadID.map { .int($0) } ?? .null),
            ("link", linkID.map { .int($0) } ?? .null),
            ("change", change),
        ])
    }
}
