import Foundation

/// Server-rendered HTML without a template engine: every page is built from plain Swift strings, and every value
/// that came from a spec, from fal or from the disk goes through `escape` (the one escaping function), so a prompt
/// like `<script>` is shown as text.
enum HTML {
    /// Text safe inside an element or a double-quoted attribute.
    static func escape(_ text: String) -> String {
        // Most names and states need nothing: no copy for them (a grid of 200 cards escapes thousands of strings).
        guard text.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    /// A whole page: the same head (stylesheet and script from this server only), a header, and `body`.
    static func page(title: String, body: String, readOnly: Bool) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title)) · kling-batch</title>
        <link rel="stylesheet" href="/assets/app.css">
        <script src="/assets/app.js" defer></script>
        </head><body data-read-only="\(readOnly)">
        <header><a href="/">kling-batch</a>\(readOnly ? " <span class=\"muted\">read-only (open the URL `kling-batch serve` prints to act)</span>" : "")</header>
        <main>\(body)</main>
        </body></html>
        """
    }

    /// `12.34 s`-style money and durations are shared with the CLI; this is the one number format for pages.
    static func dollars(_ micros: Int64) -> String {
        String(format: "$%.2f", Double(micros) / 1_000_000)
    }

    /// Links to pages 1…n around `current`, keeping the other query items.
    static func pager(current: Int, pages: Int, query: [String: String]) -> String {
        guard pages > 1 else { return "" }
        var links: [String] = []
        for page in 1...pages where page == 1 || page == pages || abs(page - current) <= 2 {
            var items = query
            items["page"] = String(page)
            let text = items.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? "")" }
                .joined(separator: "&")
            links.append(page == current ? "<strong>\(page)</strong>" : "<a href=\"?\(escape(text))\">\(page)</a>")
        }
        return "<nav class=\"pager\">" + links.joined(separator: " ") + "</nav>"
    }
}

extension CharacterSet {
    /// Characters left as they are in a query value: no `&`, `=`, `+`, `#` or `?`.
    static let urlQueryValueAllowed: CharacterSet = {
        var set = CharacterSet.urlQueryAllowed
        set.remove(charactersIn: "&=+#?/")
        return set
    }()
}
