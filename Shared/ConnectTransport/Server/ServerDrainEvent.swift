/// Sent through every connection's pipeline when the server starts draining: HTTP/2 connections
/// send GOAWAY, HTTP/1.1 connections close after their current response; in-flight calls finish.
struct ServerDrainEvent: Sendable {}
