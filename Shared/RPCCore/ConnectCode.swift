/// The Connect protocol's error codes, with their wire names and HTTP statuses
/// (connectrpc.com/docs/protocol, "Error Codes").
public enum ConnectCode: String, Sendable, Codable, CaseIterable {
    case canceled = "canceled"
    case unknown = "unknown"
    case invalidArgument = "invalid_argument"
    case deadlineExceeded = "deadline_exceeded"
    case notFound = "not_found"
    case alreadyExists = "already_exists"
    case permissionDenied = "permission_denied"
    case resourceExhausted = "resource_exhausted"
    case failedPrecondition = "failed_precondition"
    case aborted = "aborted"
    case outOfRange = "out_of_range"
    case unimplemented = "unimplemented"
    case `internal` = "internal"
    case unavailable = "unavailable"
    case dataLoss = "data_loss"
    case unauthenticated = "unauthenticated"

    /// The HTTP status a server answers with for this code.
    public var httpStatus: Int {
        switch self {
        case .canceled: 499
        case .unknown, .internal, .dataLoss: 500
        case .invalidArgument, .failedPrecondition, .outOfRange: 400
        case .deadlineExceeded: 504
        case .notFound: 404
        case .alreadyExists, .aborted: 409
        case .permissionDenied: 403
        case .resourceExhausted: 429
        case .unimplemented: 501
        case .unavailable: 503
        case .unauthenticated: 401
        }
    }

    /// The code a client infers from an HTTP status when the body is not a Connect error.
    public static func inferred(fromHTTPStatus status: Int) -> ConnectCode {
        switch status {
        case 400: .internal
        case 401: .unauthenticated
        case 403: .permissionDenied
        case 404: .unimplemented
        case 429, 502, 503, 504: .unavailable
        default: .unknown
        }
    }
}
