import Contracts
import RPCCore
import Synchronization

/// `grpc.health.v1.Health/Check`: SERVING until the process starts draining, NOT_SERVING after.
public final class HealthService: Sendable {
    private let draining = Atomic<Bool>(false)
    private let services: Set<String>

    /// `services` are the fully qualified service names a check may ask about by name.
    public init(services: Set<String>) {
        self.services = services.union(["grpc.health.v1.Health"])
    }

    /// Marks the service as draining: health checks report NOT_SERVING from now on.
    public func startDraining() {
        draining.store(true, ordering: .relaxed)
    }

    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    public func register(in router: inout RPCRouter) {
        router.register(Health.check) { [self] request, _ in
            guard request.service.isEmpty || services.contains(request.service) else {
                throw RPCError(.notFound, "unknown service '\(request.service)'")
            }
            return HealthCheckResponse(status: isDraining ? .notServing : .serving)
        }
    }
}
