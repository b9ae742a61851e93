/// A full box's entry table (stts, ctts, stss, stsc, stco, co64, elst): version and flags, an entry count, then
/// entries of fixed-width big-endian fields.
struct EntryTable: Equatable {
    var versionFlags: [UInt8]
    var entries: [[UInt64]]
    let widths: [Int]

    init(_ box: EditableBox, widths: [Int]) throws {
        let body = box.body
        guard body.count >= 8 else { throw VideoLoopError.malformed("\(box.type) is shorter than its header") }
        let count = Int(body.bigEndian(at: 4, width: 4))
        let entrySize = widths.reduce(0, +)
        guard count <= (body.count - 8) / entrySize else {
            throw VideoLoopError.malformed("\(box.type) lists \(count) entries but holds fewer")
        }
        var at = 8
        var entries: [[UInt64]] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            entries.append(widths.map { width in
                defer { at += width }
                return body.bigEndian(at: at, width: width)
            })
        }
        self.versionFlags = Array(body[0..<4])
        self.entries = entries
        self.widths = widths
    }

    var version: UInt8 { versionFlags[0] }

    /// The box body for these entries.
    var body: [UInt8] {
        var out = versionFlags
        out.appendBigEndian(UInt64(entries.count), width: 4)
        for entry in entries { for (value, width) in zip(entry, widths) { out.appendBigEndian(value, width: width) } }
        return out
    }
}

/// The per-sample tables of one track, rewritten so the track's samples play `times` times in a row, every
/// repetition reading the same chunks (the same mdat bytes) again.
enum SampleTableLooper {
    /// Boxes that describe samples in ways this looper does not repeat; meeting one is an error, not a broken file.
    static let unsupported: Set<String> = ["stz2", "sbgp", "subs", "saiz", "saio", "stsh", "stdp", "padb"]

    static func loop(_ stbl: inout EditableBox, times: Int) throws {
        guard var kids = stbl.children, let stsz = stbl.child("stsz"), stsz.body.count >= 12 else {
            throw VideoLoopError.unsupported("a track without an stsz sample size table")
        }
        let sampleCount = stsz.body.bigEndian(at: 8, width: 4)
        guard let chunks = stbl.child("stco") ?? stbl.child("co64") else {
            throw VideoLoopError.unsupported("a track without a chunk offset table")
        }
        let chunkCount = UInt64(try EntryTable(chunks, widths: [chunks.type == "co64" ? 8 : 4]).entries.count)
        for index in kids.indices {
            let box = kids[index]
            switch box.type {
            case "stts", "ctts": kids[index].body = try runLengths(box, times: times)
            case "stss": kids[index].body = try repeated(box, widths: [4], times: times) { [$0[0] + $1 * sampleCount] }
            case "stsc": kids[index].body = try chunkRuns(box, times: times, chunkCount: chunkCount)
            case "stco": kids[index].body = try repeated(box, widths: [4], times: times) { entry, _ in entry }
            case "co64": kids[index].body = try repeated(box, widths: [8], times: times) { entry, _ in entry }
            case "stsz": kids[index].body = try sampleSizes(box, times: times)
            case "sdtp": kids[index].body = Array(box.body.prefix(4)) + Array(repeating: Array(box.body.dropFirst(4)), count: times).joined()
            case let type where unsupported.contains(type): throw VideoLoopError.unsupported("a track with an \(type) box")
            default: break
            }
        }
        stbl.children = kids
        let timed = try EntryTable(stbl.child("stts") ?? EditableBox(type: "stts", body: [0, 0, 0, 0, 0, 0, 0, 0]), widths: [4, 4])
        guard timed.entries.reduce(0, { $0 + $1[0] }) == sampleCount * UInt64(times) else {
            throw VideoLoopError.malformed("stts and stsz disagree on the number of samples")
        }
    }

    /// A table whose entries are listed once per repetition, `transform` given the entry and the repetition index.
    static func repeated(_ box: EditableBox, widths: [Int], times: Int, _ transform: ([UInt64], UInt64) -> [UInt64]) throws -> [UInt8] {
        var table = try EntryTable(box, widths: widths)
        let once = table.entries
        table.entries = (0..<times).flatMap { repetition in once.map { transform($0, UInt64(repetition)) } }
        return table.body
    }

    /// stts or ctts: (count, value) runs repeated, with a run that continues across a repetition merged.
    static func runLengths(_ box: EditableBox, times: Int) throws -> [UInt8] {
        var table = try EntryTable(box, widths: [4, 4])
        let once = table.entries
        var merged: [[UInt64]] = []
        for entry in Array(repeating: once, count: times).joined() {
            if let last = merged.last, last[1] == entry[1] {
                merged[merged.count - 1][0] += entry[0]
            } else {
                merged.append(entry)
            }
        }
        table.entries = merged
        return table.body
    }

    /// stsc: each repetition's chunks follow the previous ones, so first-chunk numbers move by the chunk count; an
    /// entry that repeats the samples-per-chunk and description of the one before is left out, as it would be
    /// redundant.
    static func chunkRuns(_ box: EditableBox, times: Int, chunkCount: UInt64) throws -> [UInt8] {
        var table = try EntryTable(box, widths: [4, 4, 4])
        let once = table.entries
        var runs: [[UInt64]] = []
        for repetition in 0..<UInt64(times) {
            for entry in once {
                if let last = runs.last, last[1] == entry[1], last[2] == entry[2] { continue }
                runs.append([entry[0] + repetition * chunkCount, entry[1], entry[2]])
            }
        }
        table.entries = runs
        return table.body
    }

    /// stsz: a constant size just counts more samples; otherwise the list of sizes is repeated.
    static func sampleSizes(_ box: EditableBox, times: Int) throws -> [UInt8] {
        let body = box.body
        let constant = body.bigEndian(at: 4, width: 4)
        let count = Int(body.bigEndian(at: 8, width: 4))
        var out = Array(body[0..<8])
        out.appendBigEndian(UInt64(count * times), width: 4)
        guard constant == 0 else { return out }
        guard body.count >= 12 + 4 * count else { throw VideoLoopError.malformed("stsz lists \(count) sizes but holds fewer") }
        out += Array(repeating: body[12..<(12 + 4 * count)], count: times).joined()
        return out
    }
}
