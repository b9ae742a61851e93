import Foundation

/// Writes spec files and header-only images for runner tests: the emulator never decodes pixels, so a PNG
/// header of the right size is a valid reference image.
public enum SpecWriter {
    /// A PNG header declaring `width`×`height`, padded with `salt` so different images have different content.
    public static func png(_ width: Int = 480, _ height: Int = 480, salt: String) -> Data {
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
        for value in [width, height] { bytes += [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
        bytes += [8, 2, 0, 0, 0, 0, 0, 0, 0] + Array(salt.utf8)
        return Data(bytes)
    }

    /// Writes `count` single-job specs into `folder`; every job uses one of `sharedImages` shared images plus
    /// one image of its own, so uploads can be counted. Returns the spec paths.
    @discardableResult
    public static func writeJobs(count: Int, in folder: URL, sharedImages: Int = 3, prefix: String = "job", extra: String = "") throws -> [String] {
        let refs = folder.appendingPathComponent("refs")
        try FileManager.default.createDirectory(at: refs, withIntermediateDirectories: true)
        for index in 0..<sharedImages {
            try png(salt: "shared-\(index)").write(to: refs.appendingPathComponent("shared-\(index).png"))
        }
        var paths: [String] = []
        for index in 0..<count {
            let own = "own-\(prefix)-\(index).png"
            try png(640, 360, salt: "\(prefix)-\(index)").write(to: refs.appendingPathComponent(own))
            let shared = sharedImages > 0 ? "refs/shared-\(index % sharedImages).png" : "refs/\(own)"
            let spec = """
                name: \(prefix)-\(index)
                prompt: "Take @Image1 as the start frame; @Element1 walks through shot \(prefix) \(index)."
                image_urls: [refs/\(own)]
                elements:
                  - frontal_image_url: \(shared)
                duration: \(3 + index % 8)
                aspect_ratio: \(["16:9", "9:16", "1:1"][index % 3])
                \(extra)
                """
            let path = folder.appendingPathComponent("\(prefix)-\(index).yaml").path
            try spec.write(toFile: path, atomically: true, encoding: .utf8)
            paths.append(path)
        }
        return paths
    }
}
