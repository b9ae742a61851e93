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
    func json(batch: String, file: String, prices: PriceList) -> JSONValue {
        [
            "batch": .string(batch), "name": .string(name), "file": .string(file), "endpoint": .string(endpoint),
            "duration": .int(Int64(duration)), "aspect_ratio": .string(aspectRatio.rawValue),
            "inputs": .int(Int64(inputCount)), "local_images": .int(Int64(localImages.count)),
            "cost_usd": .double(estimatedCost(prices).dollars),
            "price_per_second_usd": .double(prices.price(for: endpoint).perSecond.dollars),
            "price_known": .bool(prices.price(for: endpoint).known),
        ]
    }
}

extension SpecReport {
    func json(prices: PriceList) -> JSONValue {
        [
            "file": .string(file), "valid": .bool(isValid), "sha256": sha256.map(JSONValue.string) ?? .null,
            "batch": .string(batchName),
            "jobs": .array(jobs.map { $0.json(batch: batchName, file: file, prices: prices) }),
            "errors": .array(errors.map(\.json)), "warnings": .array(warnings.map(\.json)),
            "expansion": expansion?.json(file: file) ?? .null,
        ]
    }
}

extension SpecExpansionSummary {
    func json(file: String) -> JSONValue {
        [
            "file": .string(file), "templates": .int(Int64(templates)), "rows_file": rowsFile.map(JSONValue.string) ?? .null,
            "rows": rows.map { .int(Int64($0)) } ?? .null,
            "matrix": .object(Dictionary(uniqueKeysWithValues: matrix.map { ($0.key, JSONValue.int(Int64($0.values))) })),
            "combinations": .int(Int64(combinations)), "takes": takesVary ? .null : .int(Int64(takes)), "jobs": .int(Int64(jobs)),
            "description": .string(description),
        ]
    }
}
