// `bpfdepot-bench store-raw OBJ COUNT DB`: the floor under an upload's store work, what
// bench/service.sh compares `POST /v1/objects` against. For each of COUNT distinct variants of
// OBJ (the 8-byte `bench_seed` marker 0x5eed5eed5eed5eed set to i + 1, as `http_probe upload`
// does), it times
//   sha:    SHA-256 of the bytes as lowercase hex, with swift-crypto, as DepotStore's Digest does;
//   insert: one INSERT of (hex id, bytes as one blob) in a BEGIN IMMEDIATE transaction and its
//           COMMIT, on a file opened with GRDB DatabasePool's settings, which DepotStore uses:
//           journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON;
//   total:  both;
//   same-bytes: SHA-256 + the ELF blob + one blob per data section (the object's initial images,
//           parsed once beforehand) in one transaction: the bytes bpfdepot itself stores for an
//           upload (the ELF and revision 1's images), without anything else it does.
// and prints one line per op: "raw-store OP N MEDIAN_US P90_US P99_US MIN_US MAX_US".
// Blobs are bound with SQLITE_STATIC (no copy): the cheapest way to hand SQLite the bytes.
import BPFObject
import CSQLite
import Crypto
import Glibc

private func sha256Hex(_ bytes: [UInt8]) -> String {
    let table = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for b in SHA256.hash(data: bytes) {
        out.append(table[Int(b >> 4)])
        out.append(table[Int(b & 0xf)])
    }
    return String(decoding: out, as: UTF8.self)
}

private func check(_ db: OpaquePointer?, _ rc: Int32, _ what: String) {
    guard rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW else {
        fail("sqlite \(what): \(String(cString: sqlite3_errmsg(db)))")
    }
}

private func exec(_ db: OpaquePointer?, _ sql: String) {
    check(db, sqlite3_exec(db, sql, nil, nil, nil), sql)
}

func storeRaw(path: String, count: Int, dbPath: String) {
    var bytes = readBytes(path)
    let marker: [UInt8] = [0xed, 0x5e, 0xed, 0x5e, 0xed, 0x5e, 0xed, 0x5e]
    guard let seed = (0...(bytes.count - 8)).first(where: { bytes[$0..<($0 + 8)].elementsEqual(marker) }) else {
        fail("\(path): no 0x5eed5eed5eed5eed marker (bench_seed)")
    }
    unlink(dbPath)
    unlink(dbPath + "-wal")
    unlink(dbPath + "-shm")
    var db: OpaquePointer?
    check(db, sqlite3_open_v2(dbPath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil), "open")
    exec(db, "PRAGMA journal_mode = WAL")
    exec(db, "PRAGMA synchronous = NORMAL")
    exec(db, "PRAGMA foreign_keys = ON")
    exec(db, "CREATE TABLE objects (id TEXT NOT NULL PRIMARY KEY, elf BLOB NOT NULL)")
    exec(db, "CREATE TABLE images (id TEXT NOT NULL, position INTEGER NOT NULL, image BLOB NOT NULL, PRIMARY KEY (id, position))")
    let images: [[UInt8]]
    do { images = try ObjectSpec(elf: bytes, name: "raw").dataSections.map(\.image) } catch { fail("\(path): \(error)") }
    var stmt: OpaquePointer?, imageStmt: OpaquePointer?
    check(db, sqlite3_prepare_v2(db, "INSERT INTO objects (id, elf) VALUES (?, ?)", -1, &stmt, nil), "prepare")
    check(db, sqlite3_prepare_v2(db, "INSERT INTO images (id, position, image) VALUES (?, ?, ?)", -1, &imageStmt, nil), "prepare")
    defer {
        sqlite3_finalize(stmt)
        sqlite3_finalize(imageStmt)
        sqlite3_close(db)
    }
    let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    func insertObject(_ id: String, withImages: Bool) {
        exec(db, "BEGIN IMMEDIATE")
        sqlite3_reset(stmt)
        check(db, sqlite3_bind_text(stmt, 1, id, -1, transient), "bind id")
        bytes.withUnsafeBytes { b in
            check(db, sqlite3_bind_blob(stmt, 2, b.baseAddress, Int32(b.count), nil), "bind blob")
            check(db, sqlite3_step(stmt), "insert")
        }
        if withImages {
            for (position, image) in images.enumerated() {
                sqlite3_reset(imageStmt)
                check(db, sqlite3_bind_text(imageStmt, 1, id, -1, transient), "bind id")
                check(db, sqlite3_bind_int64(imageStmt, 2, Int64(position)), "bind position")
                image.withUnsafeBytes { b in
                    check(db, sqlite3_bind_blob(imageStmt, 3, b.baseAddress, Int32(b.count), nil), "bind image")
                    check(db, sqlite3_step(imageStmt), "insert image")
                }
            }
        }
        exec(db, "COMMIT")
    }
    var sha: [Double] = [], insert: [Double] = [], total: [Double] = [], sameBytes: [Double] = []
    for i in 0..<(2 * count) {
        // Even iterations: one blob; odd ones: the ELF and its images (distinct ids throughout).
        withUnsafeBytes(of: UInt64(i + 1).littleEndian) { v in
            for k in 0..<8 { bytes[seed + k] = v[k] }
        }
        let t0 = nowMicros()
        let id = sha256Hex(bytes)
        let t1 = nowMicros()
        insertObject(id, withImages: i % 2 == 1)
        let t2 = nowMicros()
        if i % 2 == 0 {
            sha.append(t1 - t0)
            insert.append(t2 - t1)
            total.append(t2 - t0)
        } else {
            sameBytes.append(t2 - t0)
        }
    }
    for (op, v) in [("sha", sha), ("insert", insert), ("total", total), ("same-bytes", sameBytes)] {
        let s = v.sorted()
        print("raw-store\t\(op)\t\(s.count)\t\(fmt(percentile(s, 50), 1))\t\(fmt(percentile(s, 90), 1))\t\(fmt(percentile(s, 99), 1))\t\(fmt(s[0], 1))\t\(fmt(s[s.count - 1], 1))")
    }
}
