import Foundation

/// The process's open-file limit, which bounds how many connections it can hold: a server that
/// runs out of descriptors can no longer accept even a health check.
struct OpenFileLimit {
    /// Descriptors kept for everything but client connections: database files, calls to peers,
    /// SMTP, certificate fetches, logs.
    static let reserved = 128

    var soft: Int
    var hard: Int

    /// How many client connections fit under the soft limit.
    var connectionsAllowed: Int { max(16, soft - Self.reserved) }

    /// Raises the soft limit to the hard limit (which any process may do) and returns the result.
    static func raiseToHardLimit() -> OpenFileLimit {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return OpenFileLimit(soft: 1024, hard: 1024) }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let clamp = { (value: rlim_t) -> Int in Int(clamping: min(value, rlim_t(Int32.max))) }  // RLIM_INFINITY is the largest value
        return OpenFileLimit(soft: clamp(limit.rlim_cur), hard: clamp(limit.rlim_max))
    }
}
