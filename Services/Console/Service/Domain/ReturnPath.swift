/// Where a page may send the browser after sign-in (`next=`): only a path of this console, never
/// another host (`//evil.example`, `/\evil.example`, `https://...`), so a link cannot turn the
/// sign-in page into a redirector.
enum ReturnPath {
    static func safe(_ candidate: String?, otherwise fallback: String) -> String {
        guard let path = candidate, path.hasPrefix("/"), !path.hasPrefix("//"), !path.hasPrefix("/\\"), path.utf8.count <= 512,
            path.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F && $0 != "\\" })
        else {
            return fallback
        }
        return path
    }
}
