import CohortMembership
import Hummingbird

/// The demo's HTML page: which node served the request, the session and the cluster.
enum DemoPage {
    static func render(sessionID: String, node: String, count: Int, user: String?, members: [Membership.Member], demo: Bool) -> HTML {
        // Logging in rotates the session id (session fixation protection): watch the id
        // change while the counter keeps its value.
        let login = if let user {
            """
            <p>Logged in as <b id="user">\(escape(user))</b>
            <button id="logout" onclick="post('/api/logout')">Log out</button></p>
            """
        } else {
            """
            <form id="login" onsubmit="post('/api/login?user=' + encodeURIComponent(this.user.value));return false;">
            <input name="user" placeholder="user name" pattern="[A-Za-z0-9_-]{1,64}" required>
            <button type="submit">Log in</button> <span class="hint">gives the session a new id</span></form>
            """
        }
        let crash = demo ? """
            <p><button id="crash" onclick="crashNode()">Crash this node (kill -9)</button>
            <span class="hint">then watch the next request land on another node, same session</span></p>
            """ : ""
        let rows = members.map { member in
            let me = member.id.name == node ? " (this node)" : ""
            return "<tr class=\"\(member.status)\"><td>\(escape(member.id.name))\(me)</td><td>\(member.status)</td><td>\(escape(member.id.address.description))</td></tr>"
        }.joined(separator: "\n")
        return HTML("""
        <!doctype html>
        <html><head><meta charset="utf-8"><title>Cohort demo: \(escape(node))</title>
        <style>
        body { font-family: system-ui, sans-serif; margin: 2em; max-width: 44em; }
        .node { font-size: 2em; font-weight: bold; }
        td, th { padding: .2em 1em; text-align: left; }
        tr.alive td:nth-child(2) { color: green; } tr.suspect td:nth-child(2) { color: orange; }
        tr.dead td:nth-child(2), tr.left td:nth-child(2) { color: #999; }
        code { background: #eee; padding: .1em .3em; }
        #crash { background: #c00; color: white; border: 0; padding: .5em 1em; }
        .hint { color: #666; font-size: .9em; }
        </style></head>
        <body>
        <h2>Cohort: replicated sessions</h2>
        <p>Served by node <span class="node" id="node">\(escape(node))</span></p>
        <p>Session id: <code id="session">\(escape(sessionID))</code></p>
        <p>Counter: <span class="node" id="count">\(count)</span></p>
        <form method="post" action="/api/counter" onsubmit="fetch('/api/counter',{method:'POST'}).then(()=>location.reload());return false;">
        <button type="submit" id="increment">Increment</button></form>
        \(login)
        \(crash)
        <script>
        function post(path) {
          fetch(path, {method: 'POST'}).then(() => location.reload());
        }
        function crashNode() {
          fetch('/api/crash', {method: 'POST'}).catch(() => {}).finally(() => setTimeout(() => location.reload(), 500));
        }
        </script>
        <h3>Cluster members</h3>
        <table id="members"><tr><th>name</th><th>status</th><th>cluster address</th></tr>
        \(rows)
        </table>
        </body></html>
        """)
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}

/// An HTML response body.
struct HTML: ResponseGenerator {
    let text: String

    init(_ text: String) { self.text = text }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }
}
