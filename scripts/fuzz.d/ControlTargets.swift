// The control socket's protocol (Sources/Control): JSON lines from any peer that can
// connect, and the JSON of config.json / exit.json.
@testable import Control

enum JSONTarget {
    static let target = FuzzTarget(
        name: "json",
        covers: "JSONParser.parse (control lines, config.json, exit.json): parse → JSONText.encode → parse is the same value",
        seeds: { [
            #"{"request":"stop","timeout":2.5}"#, #"[1,-0,1e300,-1.5E-7,"\u00e9\ud83d\ude00",null,true,false,{}]"#,
            #"{"a":{"b":[[],{"c":"\"\\\/\b\f\n\r\t"}]}}"#, "9223372036854775807", "-9223372036854775809", "  \"x\"  ",
        ].map { Array($0.utf8) } },
        run: { bytes in
            guard let value = try? JSONParser.parse(bytes) else { return }
            let text = JSONText.encode(value)
            let again: ControlValue
            do { again = try JSONParser.parse(text) } catch {
                fuzzCheck(false, "its own output does not parse: \(error); text \(String(decoding: text, as: UTF8.self))")
                return
            }
            fuzzCheck(again == value, "round trip changed \(value) into \(again)")
            fuzzCheck(JSONText.encode(again) == text, "encoding is not stable for \(value)")
        })
}

enum ControlRequestTarget {
    static let target = FuzzTarget(
        name: "control-request",
        covers: "ControlRequest.parse (a control socket line from any peer): a parsed request encodes to a line that parses to it",
        seeds: { [
            #"{"request":"status"}"#, #"{"request":"stop","timeout":0.5}"#, #"{"request":"signal","signal":15,"all":true}"#,
            #"{"request":"exec","process":{"args":["sh"],"env":["A=b"]}}"#, #"{"request":"attach"}"#, #"{"request":"kill"}"#,
        ].map { Array($0.utf8) } },
        run: { bytes in
            guard let request = try? ControlRequest.parse(bytes) else { return }
            let line = request.encoded()
            fuzzCheck(line.last == UInt8(ascii: "\n") && !line.dropLast().contains(UInt8(ascii: "\n")),
                      "\(request) encodes to more or less than one line")
            let again = try? ControlRequest.parse(Array(line.dropLast()))
            fuzzCheck(again == request, "\(request) came back as \(String(describing: again))")
        })
}

enum ControlReplyTarget {
    static let target = FuzzTarget(
        name: "control-reply",
        covers: "ControlReply.parse (what svm's client reads from a VM process): parse → encode → parse round trip",
        seeds: { [
            #"{"ok":true,"state":"running","pid":42}"#, #"{"ok":false,"error":"no such VM"}"#, #"{"ok":true,"exit":0}"#,
        ].map { Array($0.utf8) } },
        run: { bytes in
            guard let reply = try? ControlReply.parse(bytes) else { return }
            let line = reply.encoded()
            let again = try? ControlReply.parse(Array(line.dropLast()))
            fuzzCheck(again == reply, "\(reply) came back as \(String(describing: again))")
        })
}
