import Foundation

/// ECDSA on P-256 accepts both (r, s) and (r, n - s) for one message, so a token would have two
/// valid spellings (and two cache entries, two audit identities). We sign only with the low
/// half (s <= n/2, as Bitcoin's BIP 62 and libsecp256k1 do) and refuse the high half.
package enum ECDSALowS {
    /// The order n of P-256's base point, big-endian.
    private static let order: [UInt8] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51
    ]
    /// n / 2 (rounded down), big-endian.
    private static let halfOrder: [UInt8] = [
        0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xDE, 0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31, 0x92, 0xA8
    ]

    /// Whether a raw 64-byte signature (r || s) has s <= n/2.
    package static func isLow(_ raw: Data) -> Bool {
        guard raw.count == 64 else { return false }
        let s = Array(raw.suffix(32))
        return s.lexicographicallyPrecedes(halfOrder) || s == halfOrder
    }

    /// The same signature with s replaced by n - s when s is in the high half.
    static func normalized(_ raw: Data) -> Data {
        guard raw.count == 64, !isLow(raw) else { return raw }
        return flipped(raw)
    }

    /// The signature's twin (r, n - s): also valid for the same message and key.
    package static func flipped(_ raw: Data) -> Data {
        let s = Array(raw.suffix(32))
        var result = [UInt8](repeating: 0, count: 32)
        var borrow = 0
        for index in stride(from: 31, through: 0, by: -1) {
            let difference = Int(order[index]) - Int(s[index]) - borrow
            borrow = difference < 0 ? 1 : 0
            result[index] = UInt8(difference & 0xFF)
        }
        return raw.prefix(32) + Data(result)
    }
}
