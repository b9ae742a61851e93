import AsyncHTTPClient
import Crypto
import Foundation
import KlingCore
import NIOFoundationCompat

/// fal's webhook signature, checked as `fal-queue-protocol.md` says: Ed25519 over the request id, user id,
/// timestamp and the hex SHA-256 of the raw body. Pure, so every way a delivery can be wrong is tested exactly.
public enum FalWebhook {
    /// The headers fal signs with, lowercased as HTTP servers hand them over.
    public static let requestIDHeader = "x-fal-webhook-request-id"
    public static let userIDHeader = "x-fal-webhook-user-id"
    public static let timestampHeader = "x-fal-webhook-timestamp"
    public static let signatureHeader = "x-fal-webhook-signature"
    /// How far a delivery's timestamp may be from now before it counts as a replay.
    public static let replayWindow: TimeInterval = 300
    /// fal's published keys.
    public static let productionKeysURL = URL(string: "https://rest.alpha.fal.ai/.well-known/jwks.json")!

    /// One of fal's published webhook keys, as its 32 raw bytes (`Sendable`, unlike swift-crypto's key type).
    public struct PublicKey: Sendable, Hashable {
        public let rawRepresentation: Data

        /// Nil unless the bytes are an Ed25519 public key.
        public init?(rawRepresentation: Data) {
            guard (try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation)) != nil else { return nil }
            self.rawRepresentation = rawRepresentation
        }

        public func isValidSignature(_ signature: Data, for message: Data) -> Bool {
            (try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation))?.isValidSignature(signature, for: message) ?? false
        }
    }

    /// A delivery that passed every check.
    public struct Delivery: Sendable, Equatable {
        public let requestID: String
        /// `OK` or `ERROR`, as fal wrote it (the runner asks the queue API for the outcome anyway).
        public let status: String

        public init(requestID: String, status: String) {
            self.requestID = requestID
            self.status = status
        }
    }

    /// Why a delivery was refused; the text is for the log and the 401 body, and holds nothing secret.
    public enum Rejection: Error, Sendable, Equatable, CustomStringConvertible {
        case missingHeader(String)
        case badTimestamp(String)
        case stale(secondsOff: Int)
        case badSignature
        case bodyMismatch(String)

        public var description: String {
            switch self {
            case .missingHeader(let name): "no \(name) header"
            case .badTimestamp(let text): "timestamp '\(text.prefix(40))' is not Unix seconds"
            case .stale(let off): "timestamp is \(off) s away from now (more than \(Int(FalWebhook.replayWindow)) s: a replay or a wrong clock)"
            case .badSignature: "the signature does not verify with any of fal's published keys"
            case .bodyMismatch(let why): "signed, but the body does not match: \(why)"
            }
        }
    }

    /// The text fal signs for a delivery.
    public static func signedMessage(requestID: String, userID: String, timestamp: String, body: Data) -> Data {
        Data("\(requestID)\n\(userID)\n\(timestamp)\n\(SHA256.hash(data: body).hexString)".utf8)
    }

    /// The signed headers of a delivery whose timestamp is within the replay window: what can be checked before any
    /// key is needed, so junk never makes the runner fetch keys.
    public struct Signed: Sendable, Equatable {
        public let requestID: String
        public let userID: String
        public let timestamp: String
        public let signature: String
    }

    /// Headers present and a timestamp within the replay window.
    public static func precheck(headers: [String: String], now: Date) -> Result<Signed, Rejection> {
        var values: [String: String] = [:]
        for name in [requestIDHeader, userIDHeader, timestampHeader, signatureHeader] {
            guard let value = headers[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return .failure(.missingHeader(name)) }
            values[name] = value
        }
        let stamp = values[timestampHeader]!
        // Unix seconds up to year 5138 (11 digits): anything longer is no timestamp, and could overflow below.
        guard stamp.count <= 11, let seconds = Int64(stamp) else { return .failure(.badTimestamp(stamp)) }
        let off = abs(now.timeIntervalSince1970 - Double(seconds))
        guard off <= replayWindow else { return .failure(.stale(secondsOff: Int(off.rounded()))) }
        return .success(Signed(requestID: values[requestIDHeader]!, userID: values[userIDHeader]!, timestamp: stamp, signature: values[signatureHeader]!))
    }

    /// Checks a delivery: headers present, timestamp within the replay window, signature by one of `keys`, and a
    /// body that names the same request as the signed header.
    public static func verify(
        headers: [String: String], body: Data, now: Date, keys: [PublicKey]
    ) -> Result<Delivery, Rejection> {
        precheck(headers: headers, now: now).flatMap { verify($0, body: body, keys: keys) }
    }

    /// The signature and the body of a delivery whose headers passed `precheck`.
    public static func verify(_ signed: Signed, body: Data, keys: [PublicKey]) -> Result<Delivery, Rejection> {
        guard let signature = Data(hex: signed.signature) else { return .failure(.badSignature) }
        let message = signedMessage(requestID: signed.requestID, userID: signed.userID, timestamp: signed.timestamp, body: body)
        guard keys.contains(where: { $0.isValidSignature(signature, for: message) }) else { return .failure(.badSignature) }
        guard let parsed = try? JSONValue.parse(body), let requestID = parsed["request_id"]?.stringValue else {
            return .failure(.bodyMismatch("no request_id in the body"))
        }
        guard requestID == signed.requestID else { return .failure(.bodyMismatch("the body names another request")) }
        return .success(Delivery(requestID: requestID, status: parsed["status"]?.stringValue ?? "?"))
    }

    /// The Ed25519 keys of a JSON Web Key Set (`kty: OKP`, `crv: Ed25519`, `x`: base64url); other keys are skipped.
    public static func keys(fromJWKS data: Data) throws -> [PublicKey] {
        guard let set = try? JSONValue.parse(data), case .array(let entries)? = set["keys"] else {
            throw KeySetError("not a JSON Web Key Set (no \"keys\" array)")
        }
        let keys = entries.compactMap { entry -> PublicKey? in
            guard entry["kty"]?.stringValue == "OKP", entry["crv"]?.stringValue == "Ed25519",
                let x = entry["x"]?.stringValue, let raw = Data(base64URL: x) else { return nil }
            return PublicKey(rawRepresentation: raw)
        }
        guard !keys.isEmpty else { throw KeySetError("the key set holds no Ed25519 key") }
        return keys
    }

    /// A key set that could not be read.
    public struct KeySetError: Error, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}

extension FalClient {
    /// fal's webhook keys from `url`, fetched without the key: the set is public, and its URL is a setting that
    /// may point anywhere. Not counted as contact with fal (a key set host that is down is not an outage of fal).
    public func webhookKeys(from url: URL) async throws -> [FalWebhook.PublicKey] {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: FalClient.userAgent)
        let body: Data
        do {
            let response = try await http.execute(request, timeout: .init(timeouts.call))
            var buffer = try await response.body.collect(upTo: 1 << 20)
            guard (200..<300).contains(response.status.code) else {
                throw FalWebhook.KeySetError("\(url.absoluteString) answered HTTP \(response.status.code)")
            }
            body = buffer.readData(length: buffer.readableBytes) ?? Data()
        } catch let error as FalWebhook.KeySetError {
            throw error
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw FalWebhook.KeySetError("could not fetch \(url.absoluteString): \(Self.describeTransport(error))")
        }
        do {
            return try FalWebhook.keys(fromJWKS: body)
        } catch let error as FalWebhook.KeySetError {
            throw FalWebhook.KeySetError("\(url.absoluteString): \(error.description)")
        }
    }
}

extension FalEndpoints {
    /// Where webhook keys are published: fal's own for fal, else `/.well-known/jwks.json` on the emulator's host.
    public var webhookKeys: URL {
        isProduction ? FalWebhook.productionKeysURL : queue.appendingPathComponent(".well-known/jwks.json")
    }
}
