/// One labelled form field as the page templates draw it: named as the proto's JSON field, with
/// its `autocomplete`, a hint, and its error beside it (`aria-describedby`).
struct Field {
    enum Kind {
        case input(type: String)
        case select(options: [(value: String, label: String)])
        case textarea
        case hidden
    }

    var name: String
    var label: String
    var kind: Kind = .input(type: "text")
    var value: String = ""
    var autocomplete: String?
    var hint: String?
    var error: String?

    static func email(_ value: String = "", label: String = "Email address") -> Field {
        Field(name: "email", label: label, kind: .input(type: "email"), value: value, autocomplete: "email")
    }

    static func password(_ name: String = "password", label: String = "Password", new: Bool) -> Field {
        Field(
            name: name, label: label, kind: .input(type: "password"), autocomplete: new ? "new-password" : "current-password",
            hint: new ? "12 to 256 characters. A phrase of several words is easy to remember and hard to guess." : nil)
    }

    static func hidden(_ name: String, _ value: String) -> Field {
        Field(name: name, label: "", kind: .hidden, value: value)
    }

    /// What the templates read.
    var mustache: [String: Any] {
        var values: [String: Any] = [
            "name": name, "label": label, "value": value, "hasError": error != nil, "error": error ?? "",
            "hasHint": hint != nil, "hint": hint ?? "", "autocomplete": autocomplete ?? "off"
        ]
        let describedBy = [error.map { _ in "\(name)-error" }, hint.map { _ in "\(name)-hint" }].compactMap { $0 }.joined(separator: " ")
        values["describedBy"] = describedBy
        values["hasDescription"] = !describedBy.isEmpty
        switch kind {
        case .input(let type):
            values["isInput"] = true
            values["type"] = type
        case .select(let options):
            values["isSelect"] = true
            values["options"] =
                [["value": "", "label": "Choose...", "selected": value.isEmpty]]
                + options.map { ["value": $0.value, "label": $0.label, "selected": $0.value == value] }
        case .textarea:
            values["isTextarea"] = true
        case .hidden:
            values["isHidden"] = true
        }
        return values
    }
}

/// A problem to show at the top of a page, linked to its field when it has one.
struct PageError {
    var field: String?
    var message: String
}
