import Foundation

/// What curl saw of one exchange.
public struct CurlResponse: Sendable {
    public var status: Int
    public var httpVersion: String
    public var headers: String
    public var body: String
}

/// curl, the reference HTTP client, as tests use it.
public enum Curl {
    /// POSTs `body` (or `bodyFile`) to `url` with the given extra curl arguments.
    public static func post(
        _ url: String, body: String? = nil, bodyFile: String? = nil,
        contentType: String = "application/json", extra: [String] = []
    ) async throws -> CurlResponse {
        var arguments = ["curl", "-sS", "-X", "POST", "-H", "content-type: \(contentType)"]
        if let body { arguments += ["--data-binary", body] }
        if let bodyFile { arguments += ["--data-binary", "@\(bodyFile)"] }
        return try await run(url, arguments + extra)
    }

    /// GETs `url`.
    public static func get(_ url: String, extra: [String] = []) async throws -> CurlResponse {
        try await run(url, ["curl", "-sS"] + extra)
    }

    private static func run(_ url: String, _ arguments: [String]) async throws -> CurlResponse {
        let headerFile = NSTemporaryDirectory() + "curl-headers-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: headerFile) }
        let result = try await ExternalCommand.run(
            arguments + ["-D", headerFile, "-w", "\n%{http_code} %{http_version}", "--max-time", "20", url], timeout: .seconds(30))
        guard result.status == 0 else { throw ProcessFailure("curl failed (\(result.status)): \(result.stderr)") }
        var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let trailer = lines.removeLast().split(separator: " ")
        return CurlResponse(
            status: Int(trailer[0]) ?? 0, httpVersion: String(trailer[1]),
            headers: (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? "",
            body: lines.joined(separator: "\n"))
    }
}

/// Writes `data` to a new temporary file and returns its path.
public func temporaryFile(_ data: Data) throws -> String {
    let path = NSTemporaryDirectory() + "body-\(UUID().uuidString)"
    try data.write(to: URL(fileURLWithPath: path))
    return path
}
