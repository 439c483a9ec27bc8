import RPCCore
import Synchronization

/// A test-only RPC service, so transport tests can ask for slow, large or internal-only answers.
public enum Echo {
    public static let echo = RPCMethod<EchoRequest, EchoResponse>(service: "test.v1.Echo", name: "Echo")
    public static let internalEcho = RPCMethod<EchoRequest, EchoResponse>(
        service: "test.v1.Echo", name: "InternalEcho",
        access: .internalOnly(callers: ["caller"]))

    private static let startedTexts = Mutex<Set<String>>([])

    /// True once a handler has started on a request with this text (tests wait for it instead of sleeping).
    public static func hasStarted(_ text: String) -> Bool {
        startedTexts.withLock { $0.contains(text) }
    }

    /// Registers both methods; `internalEcho` reports the calling service in `caller`.
    public static func register(in router: inout RPCRouter) {
        let handler: @Sendable (EchoRequest, CallContext) async throws -> EchoResponse = { request, context in
            _ = startedTexts.withLock { $0.insert(request.text) }
            if request.sleepMs > 0 {
                try await Task.sleep(for: .milliseconds(request.sleepMs))
            }
            if let code = request.failWith.flatMap(ConnectCode.init(rawValue:)) {
                throw RPCError(code, "asked to fail")
            }
            let padding = String(repeating: "x", count: max(0, request.padTo - request.text.utf8.count))
            return EchoResponse(
                text: request.text + padding, caller: context.callingService, requestId: context.requestID,
                headerNames: context.headers.map(\.name))
        }
        router.register(echo, handler: handler)
        router.register(internalEcho, handler: handler)
    }
}

public struct EchoRequest: RPCMessage {
    public var text: String
    public var sleepMs: Int
    public var padTo: Int
    public var failWith: String?

    public init(text: String, sleepMs: Int = 0, padTo: Int = 0, failWith: String? = nil) {
        self.text = text
        self.sleepMs = sleepMs
        self.padTo = padTo
        self.failWith = failWith
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        text = try container.decodeIfPresent(String.self, forKey: .text) ?? ""
        sleepMs = try container.decodeIfPresent(Int.self, forKey: .sleepMs) ?? 0
        padTo = try container.decodeIfPresent(Int.self, forKey: .padTo) ?? 0
        failWith = try container.decodeIfPresent(String.self, forKey: .failWith)
    }

    private enum CodingKeys: String, CodingKey { case text, sleepMs, padTo, failWith }
}

public struct EchoResponse: RPCMessage {
    public var text: String
    public var caller: String?
    public var requestId: String
    /// The request header names the handler was shown.
    public var headerNames: [String]?
}

/// A counter tasks of one test share.
public final class SharedCounter: Sendable {
    private let count = Atomic<Int>(0)
    public init() {}
    public func increment() { count.add(1, ordering: .relaxed) }
    public var value: Int { count.load(ordering: .relaxed) }
}
