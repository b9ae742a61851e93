import Foundation

/// `scheme://host[:port]` of a URL: what "the same server" means when deciding where the key may go.
///
/// Lower-cased, with the scheme's default port left out, so `https://queue.fal.run/x` and
/// `HTTPS://Queue.fal.run:443/y` are one origin and `http://127.0.0.1:4545` and `http://127.0.0.1:4546` are two.
public enum FalOrigin {
    public static func of(_ url: URL) -> String? { of(url.absoluteString) }

    public static func of(_ text: String) -> String? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased(), !host.isEmpty
        else { return nil }
        let defaultPort = scheme == "https" ? 443 : scheme == "http" ? 80 : nil
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        if let port = components.port, port != defaultPort { return "\(scheme)://\(bracketed):\(port)" }
        return "\(scheme)://\(bracketed)"
    }
}
