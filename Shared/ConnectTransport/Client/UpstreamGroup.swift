import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RPCCore

/// Every endpoint a client's calls may go to, as replicas of a peer are reached: each URL of a
/// comma-separated list, each host name resolved to all its addresses (a compose-scaled service, a
/// Kubernetes headless service), one connection pool each. A call starts at the next endpoint in
/// turn and moves on past endpoints that cannot be reached; names are resolved again, as calls
/// come, once `resolveInterval` has passed, and endpoints that went away are closed. An endpoint
/// that left a call unanswered until its deadline is tried after the others for a while.
final class UpstreamGroup: Sendable {
    /// Resolves a host name to its addresses (an empty answer keeps the name).
    typealias Resolver = @Sendable (String) async -> [String]

    private let targets: [UpstreamAddress]
    private let configuration: ConnectClient.Configuration
    private let group: any EventLoopGroup
    private let resolver: Resolver
    private let resolveInterval: TimeAmount
    private let state = NIOLockedValueBox(State())

    private struct State {
        /// Pools by endpoint (scheme, address, port), in a stable order.
        var pools: [(key: String, pool: HTTP2ConnectionPool)] = []
        var next = 0
        var resolvedAt: NIODeadline?
        var resolving = false
        var closed = false
    }

    init(
        urls: String, configuration: ConnectClient.Configuration, group: any EventLoopGroup,
        resolveInterval: TimeAmount = .seconds(30), resolver: @escaping Resolver = UpstreamGroup.systemResolver
    ) throws {
        targets = try urls.split(separator: ",").map { try UpstreamAddress(parsing: $0.trimmingCharacters(in: .whitespaces)) }
        guard !targets.isEmpty else { throw ConfigurationError("an upstream needs at least one URL") }
        self.configuration = configuration
        self.group = group
        self.resolver = resolver
        self.resolveInterval = resolveInterval
    }

    /// The name's addresses from the system resolver (getaddrinfo, on NIO's blocking-work pool).
    static let systemResolver: Resolver = { name in
        (try? await NIOThreadPool.singleton.runIfActive { Host(name: name).addresses }) ?? []
    }

    /// The endpoints to try for one call, in order: the next in turn first, those answering before
    /// those that left a call unanswered lately, and those backing off after a failed connect last.
    func poolsForCall() async -> [HTTP2ConnectionPool] {
        let mustResolve = state.withLockedValue { state -> Bool in
            guard !state.closed else { return false }
            // Nothing to call yet: every first caller resolves rather than finding no endpoint.
            if state.pools.isEmpty { return true }
            // Later, one caller refreshes while the others use the endpoints known.
            guard !state.resolving, state.resolvedAt.map({ NIODeadline.now() - $0 >= resolveInterval }) ?? true else { return false }
            state.resolving = true
            return true
        }
        if mustResolve { await resolve() }
        return state.withLockedValue { state in
            guard state.pools.count > 1 else { return state.pools.map(\.pool) }  // one replica: nothing to order
            let start = state.next % state.pools.count
            state.next &+= 1
            let turn = (0..<state.pools.count).map { state.pools[(start + $0) % state.pools.count].pool }
            let backingOff = turn.filter(\.isBackingOff)
            let reachable = turn.filter { !$0.isBackingOff }
            return reachable.filter { !$0.isUnresponsive } + reachable.filter(\.isUnresponsive) + backingOff
        }
    }

    /// How many endpoints the calls are spread over now.
    var endpointCount: Int { state.withLockedValue { $0.pools.count } }

    func close() async {
        let pools = state.withLockedValue { state in
            state.closed = true
            defer { state.pools = [] }
            return state.pools.map(\.pool)
        }
        for pool in pools { await pool.close() }
    }

    private func resolve() async {
        var endpoints: [(key: String, target: UpstreamAddress)] = []
        for target in targets {
            let addresses = target.host.isIPAddress ? [target.host] : await resolver(target.host).filter(\.isIPAddress)
            for address in addresses.isEmpty ? [target.host] : addresses {
                var endpoint = target
                endpoint.address = address
                let key = "\(target.secure ? "https" : "http")://\(target.host)@\(address):\(target.port)"
                if !endpoints.contains(where: { $0.key == key }) { endpoints.append((key, endpoint)) }
            }
        }
        let removed = state.withLockedValue { state -> [HTTP2ConnectionPool] in
            state.resolving = false
            state.resolvedAt = .now()
            guard !state.closed else { return [] }
            let current = Dictionary(state.pools.map { ($0.key, $0.pool) }) { first, _ in first }
            state.pools = endpoints.map { endpoint in
                (endpoint.key, current[endpoint.key] ?? HTTP2ConnectionPool(target: endpoint.target, configuration: configuration, group: group))
            }
            let kept = Set(endpoints.map(\.key))
            return current.filter { !kept.contains($0.key) }.map(\.value)
        }
        for pool in removed { await pool.close() }
    }
}

extension String {
    var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}
