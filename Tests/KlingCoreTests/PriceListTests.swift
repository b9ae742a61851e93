@testable import KlingCore
import Testing

@Suite("Prices per endpoint, and amounts that add up")
struct PriceListTests {
    let standard = "fal-ai/kling-video/o1/standard/reference-to-video"

    @Test("the published price is Pro's $0.112/s; an endpoint with no price is counted at the highest known one")
    func unknownIsHighest() {
        let published = PriceList.published
        #expect(published.price(for: PriceList.klingO1Pro) == .init(perSecond: USD(micros: 112_000), known: true))
        #expect(published.price(for: standard) == .init(perSecond: USD(micros: 112_000), known: false))
        let both = published.merging([standard: USD(micros: 84_000), "some/other": USD(micros: 150_000)])
        #expect(both.cost(endpoint: standard, seconds: 10) == USD(micros: 840_000))
        #expect(both.price(for: "not/priced") == .init(perSecond: USD(micros: 150_000), known: false))
        #expect(both.cost(endpoint: PriceList.klingO1Pro, seconds: 3) == USD(micros: 336_000))
        #expect(PriceList([:]).price(for: standard).perSecond == .klingO1PerSecond, "with no prices at all, fal's published one")
    }

    @Test("prices parse from endpoint=dollars pairs; a bad pair is named")
    func parsing() throws {
        let parsed = try PriceList.parse(" \(standard)=0.084 , a/b=$1\n").get()
        #expect(parsed == [standard: USD(micros: 84_000), "a/b": USD(micros: 1_000_000)])
        #expect(PriceList(parsed).settingText == "a/b=1.00,\(standard)=0.084")
        for bad in ["nope", "=0.1", "a/b=free", "a/b=0", "a b=0.1"] {
            guard case .failure(let error) = PriceList.parse(bad) else { Issue.record("accepted \(bad)"); continue }
            #expect(error.pair == bad.trimmingCharacters(in: .whitespaces))
        }
    }

    @Test("exact amounts keep every digit, so a column of them adds up to its total; cents round once")
    func exactAmounts() {
        #expect(USD(micros: 336_000).exactDescription == "$0.336")
        #expect(USD(micros: 560_000).exactDescription == "$0.56")
        #expect(USD(micros: 1_000_000).exactDescription == "$1.00")
        #expect(USD(micros: 1).exactDescription == "$0.000001")
        #expect(USD(micros: -336_000).exactDescription == "-$0.336")
        #expect(USD(micros: 84_000).decimalText == "0.084")
        // Three 3 s jobs: $0.34 each when rounded, $1.01 if the rounded rows were added; the total is $1.008.
        let rows = Array(repeating: PriceList.published.cost(endpoint: PriceList.klingO1Pro, seconds: 3), count: 3)
        let total = rows.reduce(USD.zero, +)
        #expect(total.exactDescription == "$1.008" && total.description == "$1.01")
        #expect(rows.map(\.exactDescription) == ["$0.336", "$0.336", "$0.336"])
    }
}
