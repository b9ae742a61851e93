import Foundation

/// What fal charges per second of video on each endpoint: the one function that prices a job, so that `plan`, the
/// budget, manifests and `report` can never disagree about what the same job costs.
public struct PriceList: Sendable, Hashable {
    /// Known prices by endpoint id, in dollars per second of video.
    public private(set) var perSecond: [String: USD]

    /// Kling O1 reference-to-video, Pro tier: the endpoint whose price fal publishes ($0.112/s).
    public static let klingO1Pro = "fal-ai/kling-video/o1/reference-to-video"

    /// fal's published prices, the defaults before any `prices:` setting.
    public static let published = PriceList([klingO1Pro: .klingO1PerSecond])

    public init(_ perSecond: [String: USD]) { self.perSecond = perSecond }

    /// A price, and whether it was known for the endpoint or assumed.
    public struct Price: Sendable, Hashable {
        public var perSecond: USD
        /// False when the endpoint has no price: it is then priced at the highest known one, so that a budget is
        /// never exceeded by guessing low.
        public var known: Bool

        public init(perSecond: USD, known: Bool) {
            self.perSecond = perSecond
            self.known = known
        }
    }

    /// The most a second of video may cost in a price list: far above any real price, far below an amount whose
    /// arithmetic could overflow. A typo such as `112000` is refused, not budgeted.
    public static let ceiling = USD(micros: 1_000 * 1_000_000)

    /// The price of a second of video on `endpoint`; an endpoint with no price gets the highest known one.
    public func price(for endpoint: String) -> Price {
        if let known = perSecond[endpoint] { return Price(perSecond: known, known: true) }
        return Price(perSecond: perSecond.values.max() ?? .klingO1PerSecond, known: false)
    }

    /// What `seconds` of video cost on `endpoint`, exactly, in micro-dollars.
    public func cost(endpoint: String, seconds: Int) -> USD { price(for: endpoint).perSecond * seconds }

    /// These prices with `overrides` taking precedence.
    public func merging(_ overrides: [String: USD]) -> PriceList { PriceList(perSecond.merging(overrides) { $1 }) }

    /// The prices as a setting's text: `endpoint=dollars` pairs joined by commas, sorted by endpoint.
    public var settingText: String {
        perSecond.keys.sorted().map { "\($0)=\(perSecond[$0]!.decimalText)" }.joined(separator: ",")
    }

    /// Parses `endpoint=dollars` pairs separated by commas (or new lines); the error names the first bad pair.
    public static func parse(_ text: String) -> Result<[String: USD], PriceListError> {
        var prices: [String: USD] = [:]
        let pairs = text.split(whereSeparator: { $0 == "," || $0 == "\n" }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for pair in pairs {
            guard let equals = pair.lastIndex(of: "=") else { return .failure(PriceListError(pair: pair, problem: "expected endpoint=dollars")) }
            let endpoint = pair[..<equals].trimmingCharacters(in: .whitespaces)
            let amount = pair[pair.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !endpoint.isEmpty, !endpoint.contains(where: \.isWhitespace) else {
                return .failure(PriceListError(pair: pair, problem: "the endpoint id is missing"))
            }
            guard let price = USD(parsing: amount), price.micros > 0, price <= ceiling else {
                return .failure(PriceListError(pair: pair, problem: "the price must be dollars per second such as 0.112 (at most \(ceiling.exactDescription))"))
            }
            prices[endpoint] = price
        }
        return .success(prices)
    }
}

/// A `prices` setting that cannot be read, with the pair at fault.
public struct PriceListError: Error, Sendable, Equatable, CustomStringConvertible {
    public var pair: String
    public var problem: String
    public var description: String { "'\(pair)': \(problem)" }
}
