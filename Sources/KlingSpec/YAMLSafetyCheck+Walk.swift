import CYaml

extension YAMLSafetyCheck {
    /// What one event tells the pass: read on, the document ended safely, or it must be refused.
    enum Step {
        case more
        case safe
        case unsafe(Finding)
    }

    /// The pass's running count: open collections, the expanded size of each anchor, and the total so far.
    struct Walk {
        let limits: YAMLSafetyCheck
        private var stack: [Frame] = []
        private var anchorSizes: [String: Int] = [:]
        private var documents = 0
        private var total = 0

        init(limits: YAMLSafetyCheck) {
            self.limits = limits
        }

        /// Counts one event; a finished value adds its expanded size to its parent and to the total.
        mutating func take(_ event: yaml_event_t) -> Step {
            let line = Int(event.start_mark.line) + 1
            let column = Int(event.start_mark.column) + 1
            func refuse(_ message: String) -> Step { .unsafe(Finding(message: message, line: line, column: column)) }
            let size: Int
            let anchor: String?
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return .safe
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                return documents > 1 ? refuse("a spec file holds one YAML document; this one has a second (---)") : .more
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let isMapping = event.type == YAML_MAPPING_START_EVENT
                let name = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
                stack.append(Frame(anchor: name.map { String(cString: $0) }, isMapping: isMapping))
                return stack.count > limits.maxDepth ? refuse("nested more than \(limits.maxDepth) levels deep") : .more
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let frame = stack.popLast() else { return .more }
                size = frame.size
                anchor = frame.anchor
            case YAML_SCALAR_EVENT:
                size = 1
                anchor = event.data.scalar.anchor.map { String(cString: $0) }
            case YAML_ALIAS_EVENT:
                let name = event.data.alias.anchor.map { String(cString: $0) } ?? ""
                guard let known = anchorSizes[name] else {
                    return refuse("the alias *\(name) refers to no anchor &\(name) defined before it")
                }
                if let parent = stack.last, parent.isMapping, parent.childCount % 2 == 0, known > 1 {
                    return refuse("the alias *\(name) stands for a list or mapping and cannot be a key")
                }
                size = known
                anchor = nil
            default:
                return .more
            }
            return add(size, anchor: anchor) ? .more : refuse("aliases expand to more than \(limits.maxExpandedNodes) values")
        }

        /// Adds a finished value; false once the document would expand past the limit.
        private mutating func add(_ size: Int, anchor: String?) -> Bool {
            if let anchor { anchorSizes[anchor] = size }
            total += size
            if total > limits.maxExpandedNodes || size > limits.maxExpandedNodes { return false }
            if !stack.isEmpty {
                stack[stack.count - 1].size += size
                stack[stack.count - 1].childCount += 1
            }
            return true
        }
    }
}
