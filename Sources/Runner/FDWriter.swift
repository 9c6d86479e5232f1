import Host

/// svm run's messages: one line on stderr, prefixed "svm: ".
enum FDWriter {
    static func message(_ text: String) {
        writeAll(Array("svm: \(text)\n".utf8), to: 2)
    }
}
