import RPCCore

/// `grpc.health.v1.Health` (proto/grpc/health/v1/health.proto): every service answers it.
public enum Health {
    public static let check = RPCMethod<HealthCheckRequest, HealthCheckResponse>(service: "grpc.health.v1.Health", name: "Check")
}

/// `grpc.health.v1.HealthCheckRequest`.
public struct HealthCheckRequest: RPCMessage, Equatable {
    /// Empty means the server as a whole.
    public var service: String

    public init(service: String = "") {
        self.service = service
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        service = try container.decodeIfPresent(String.self, forKey: .service) ?? ""
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if !service.isEmpty { try container.encode(service, forKey: .service) }
    }

    private enum CodingKeys: String, CodingKey { case service }
}

/// `grpc.health.v1.HealthCheckResponse`.
public struct HealthCheckResponse: RPCMessage, Equatable {
    /// `grpc.health.v1.HealthCheckResponse.ServingStatus`, written as its name.
    public enum ServingStatus: String, Codable, Sendable {
        case unknown = "UNKNOWN"
        case serving = "SERVING"
        case notServing = "NOT_SERVING"
        case serviceUnknown = "SERVICE_UNKNOWN"
    }

    public var status: ServingStatus

    public init(status: ServingStatus) {
        self.status = status
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = try container.decodeIfPresent(ServingStatus.self, forKey: .status) ?? .unknown
    }

    private enum CodingKeys: String, CodingKey { case status }
}
