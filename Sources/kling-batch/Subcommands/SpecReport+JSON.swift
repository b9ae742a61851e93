import KlingCore
import KlingSpec

extension SpecDiagnostic {
    var json: JSONValue {
        [
            "severity": .string(severity.rawValue), "file": .string(file),
            "line": line.map { .int(Int64($0)) } ?? .null, "column": column.map { .int(Int64($0)) } ?? .null,
            "path": .string(fieldPath), "message": .string(message),
        ]
    }
}

extension JobSpec {
    func json(batch: String, file: String, rate: USD) -> JSONValue {
        [
            "batch": .string(batch), "name": .string(name), "file": .string(file), "endpoint": .string(endpoint),
            "duration": .int(Int64(duration)), "aspect_ratio": .string(aspectRatio.rawValue),
            "inputs": .int(Int64(inputCount)), "local_images": .int(Int64(localImages.count)),
            "cost_usd": .double(estimatedCost(rate: rate).dollars),
        ]
    }
}

extension SpecReport {
    func json(rate: USD) -> JSONValue {
        [
            "file": .string(file), "valid": .bool(isValid), "sha256": sha256.map(JSONValue.string) ?? .null,
            "batch": .string(batchName),
            "jobs": .array(jobs.map { $0.json(batch: batchName, file: file, rate: rate) }),
            "errors": .array(errors.map(\.json)), "warnings": .array(warnings.map(\.json)),
        ]
    }
}
