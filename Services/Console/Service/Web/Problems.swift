import Hummingbird
import Logging
import RPCCore

/// What a page shows when a call fails: the services' messages are written for people, so they
/// are shown as sentences; a service that does not answer gets "try again shortly", never a trace.
enum Problems {
    static func page(for error: RPCError, logger: Logger) -> Page {
        switch error.code {
        case .unavailable, .deadlineExceeded, .internal, .unknown, .canceled, .dataLoss, .unimplemented:
            logger.warning("an upstream call failed", metadata: ["code": "\(error.code.rawValue)", "message": "\(error.message)"])
            return .message(
                .serviceUnavailable, title: "Please try again shortly",
                "Part of our service is not answering right now, so this step was not completed. Wait a minute, then try again.")
        case .resourceExhausted:
            return .message(.tooManyRequests, title: "Too many attempts", sentence(error.message))
        case .permissionDenied:
            return .message(.forbidden, title: "Not allowed", sentence(error.message), links: [("/organizations", "Your organizations")])
        case .notFound:
            return .message(.notFound, title: "Not found", sentence(error.message), links: [("/organizations", "Your organizations")])
        case .unauthenticated:
            return .message(.unauthorized, title: "Please sign in", sentence(error.message), links: [("/login", "Sign in")])
        default:
            return .message(.badRequest, title: "That did not work", sentence(error.message))
        }
    }

    /// `error` as problems of the form's fields, when it is an invalid argument naming one of
    /// `labels`' fields ("password must be 12 to 256 characters" beside the password).
    static func fieldErrors(_ error: RPCError, labels: [String: String]) -> [PageError]? {
        guard error.code == .invalidArgument else { return nil }
        let words = error.message.split(separator: " ", maxSplits: 1)
        guard words.count == 2, let label = labels[String(words[0])] else {
            return [PageError(message: sentence(error.message))]
        }
        return [PageError(field: String(words[0]), message: "\(label) \(words[1])".hasSuffix(".") ? "\(label) \(words[1])" : "\(label) \(words[1]).")]
    }

    /// A service message as a sentence: capital first letter, final full stop.
    static func sentence(_ message: String) -> String {
        guard let first = message.first else { return message }
        let text = first.uppercased() + message.dropFirst()
        return text.hasSuffix(".") ? text : text + "."
    }
}
