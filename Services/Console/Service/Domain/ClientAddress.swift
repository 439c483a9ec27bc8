import Foundation

/// The buyer's IP address, for identity's and marketplace-link's throttling. The socket's peer,
/// unless that peer is one of `--trusted-proxies`: then `X-Forwarded-For`, read from the right,
/// skipping trusted proxies (a client can put anything at the left of that header).
struct ClientAddress {
    var trustedProxies: Set<String>

    func resolve(peer: String?, forwardedFor: [String]) -> String {
        guard let peer else { return "unknown" }
        guard trustedProxies.contains(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for hop in hops.reversed() where !trustedProxies.contains(hop) {
            return hop.utf8.count <= 64 ? hop : peer
        }
        return peer
    }
}
