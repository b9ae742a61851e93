/// Makes an MP4 that really plays `times` times as long as a clip, at the box level: the moov's sample tables
/// list the clip's samples `times` times over, every repetition pointing at the same mdat bytes, and the movie,
/// track, media and edit durations are multiplied. The mdat is stored once, so a 10 s video is barely larger
/// than the 1 s clip. The clip must start with a sync sample (a keyframe) so that each repetition decodes.
enum VideoLooper {
    /// `file` looped `times` times: its moov rewritten (growing, so chunk offsets into the mdat after it shift), the rest as it was.
    static func loop(_ file: [UInt8], times: Int) throws -> [UInt8] {
        guard times >= 1 else { throw VideoLoopError.unsupported("\(times) repetitions") }
        let spans = try BoxSpan.split(file[...])
        guard let moovSpan = spans.first(where: { $0.type == "moov" }) else { throw VideoLoopError.malformed("no moov box") }
        // A last box sized "to the end of the file" would swallow the padding that follows the video.
        if let last = spans.last, file.bigEndian(at: last.start, width: 4) == 0 {
            throw VideoLoopError.unsupported("a \(last.type) box sized to the end of the file")
        }
        guard var moov = try EditableBox.parseSequence(file[moovSpan.start..<moovSpan.end]).first else {
            throw VideoLoopError.malformed("an empty moov box")
        }
        try scaleDurations(&moov, times: times)
        try moov.modifyAll("stbl") { try SampleTableLooper.loop(&$0, times: times) }
        var rebuilt = moov.serialized()
        let growth = rebuilt.count - (moovSpan.end - moovSpan.start)
        if growth != 0 {
            // The moov grew, so media stored after it moved by as much; chunk offsets must follow it.
            try shiftChunkOffsets(&moov, after: moovSpan.end, by: growth)
            rebuilt = moov.serialized()
        }
        return Array(file[..<moovSpan.start]) + rebuilt + Array(file[moovSpan.end...])
    }

    /// Multiplies mvhd, tkhd and mdhd durations, and the duration of every edit that shows media, by `times`.
    static func scaleDurations(_ moov: inout EditableBox, times: Int) throws {
        // (offset, width) of the duration field in version 0 and version 1 bodies.
        let fields: [(String, v0: Int, v1: Int)] = [("mvhd", 16, 24), ("tkhd", 20, 28), ("mdhd", 16, 24)]
        for (type, v0, v1) in fields {
            try moov.modifyAll(type) { box in
                let (at, width) = box.body.first == 1 ? (v1, 8) : (v0, 4)
                guard box.body.count >= at + width else { throw VideoLoopError.malformed("\(type) is too short") }
                box.body.setBigEndian(try scaled(box.body.bigEndian(at: at, width: width), times, width: width), at: at, width: width)
            }
        }
        try moov.modifyAll("elst") { box in
            let wide = box.body.first == 1
            var table = try EntryTable(box, widths: wide ? [8, 8, 4] : [4, 4, 4])
            let emptyEdit: UInt64 = wide ? .max : UInt64(UInt32.max)
            for index in table.entries.indices where table.entries[index][1] != emptyEdit {
                table.entries[index][0] = try scaled(table.entries[index][0], times, width: wide ? 8 : 4)
            }
            box.body = table.body
        }
    }

    /// `value × times`, refused when it does not fit the field.
    static func scaled(_ value: UInt64, _ times: Int, width: Int) throws -> UInt64 {
        let (product, overflow) = value.multipliedReportingOverflow(by: UInt64(times))
        guard !overflow, width == 8 || product <= UInt64(UInt32.max) else {
            throw VideoLoopError.unsupported("a duration of \(value) × \(times) does not fit its field")
        }
        return product
    }

    /// Moves every chunk offset at or past `boundary` (the old end of the moov) by `delta` bytes.
    static func shiftChunkOffsets(_ moov: inout EditableBox, after boundary: Int, by delta: Int) throws {
        for (type, width) in [("stco", 4), ("co64", 8)] {
            try moov.modifyAll(type) { box in
                var table = try EntryTable(box, widths: [width])
                for index in table.entries.indices where table.entries[index][0] >= UInt64(boundary) {
                    let moved = Int(table.entries[index][0]) + delta
                    guard moved >= 0, width == 8 || moved <= Int(UInt32.max) else {
                        throw VideoLoopError.unsupported("a chunk offset moved past what stco can hold")
                    }
                    table.entries[index][0] = UInt64(moved)
                }
                box.body = table.body
            }
        }
    }
}
