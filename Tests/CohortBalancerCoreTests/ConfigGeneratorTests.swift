import CohortBalancerCore
import CohortCore
import Foundation
import Testing

private func node(_ name: String, _ port: Int, host: String = "127.0.0.1") -> ExternalBalancerConfig.Node {
    .init(name: name, address: Address(host: host, port: port))
}

private let trio = ExternalBalancerConfig(
    nodes: [node("n1", 8081), node("n2", 8082), node("n3", 8083)],
    listen: Address(host: "127.0.0.1", port: 8080)
)

/// The lines of a generated file that are not comments, trimmed.
private func directives(_ text: String) -> [String] {
    text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty && !$0.hasPrefix("#") }
}

/// The directive lines between `header` (e.g. "upstream cohort_n1 {") and its closing brace.
private func block(_ header: String, in text: String) -> [String] {
    let lines = directives(text)
    guard let start = lines.firstIndex(of: header) else { return [] }
    return Array(lines[(start + 1)...].prefix { $0 != "}" })
}

@Suite("ExternalBalancerConfig validation")
struct ExternalBalancerConfigValidationTests {
    @Test("node names that could inject configuration text are rejected", arguments: [
        "", "n1;", "n 1", "n1}", "n1{", "n.1", "n1#", "n1\"", "n1$x", "n1\nserver", String(repeating: "n", count: 65),
    ])
    func rejectsNodeName(name: String) {
        let config = ExternalBalancerConfig(nodes: [node(name, 8081)])
        #expect(throws: ExternalBalancerConfigError.invalidNodeName(name)) { try config.validated() }
        #expect(throws: ExternalBalancerConfigError.self) { try NginxConfig(balancer: config).render() }
        #expect(throws: ExternalBalancerConfigError.self) { try HAProxyConfig(balancer: config).render() }
    }

    @Test("hosts, ports, cookie names and paths are checked")
    func rejectsOtherFields() {
        let bad: [(ExternalBalancerConfig, ExternalBalancerConfigError)] = [
            (.init(nodes: []), .noNodes),
            (.init(nodes: [node("a", 1), node("a", 2)]), .duplicateNodeName("a")),
            (.init(nodes: [node("n1", 1), node("N1", 2)]), .duplicateNodeName("N1")),
            (.init(nodes: [node("a", 1, host: "x;y")]), .invalidHost(role: "backend a", "x;y")),
            (.init(nodes: [node("a", 1, host: "x y")]), .invalidHost(role: "backend a", "x y")),
            (.init(nodes: [node("a", 1, host: "-x")]), .invalidHost(role: "backend a", "-x")),
            (.init(nodes: [node("a", 0)]), .invalidPort(role: "backend a", 0)),
            (.init(nodes: [node("a", 1)], listen: Address(host: "h}", port: 80)), .invalidHost(role: "listen address", "h}")),
            (.init(nodes: [node("a", 1)], cookieName: "A;B"), .invalidCookieName("A;B")),
            (.init(nodes: [node("a", 1)], cookieName: "a=b"), .invalidCookieName("a=b")),
            (.init(nodes: [node("a", 1)], cookieName: ""), .invalidCookieName("")),
            (.init(nodes: [node("a", 1)], healthCheckPath: "health"), .invalidHealthCheckPath("health")),
            (.init(nodes: [node("a", 1)], healthCheckPath: "/h;x"), .invalidHealthCheckPath("/h;x")),
            (.init(nodes: [node("a", 1)], healthCheckPath: "/h x"), .invalidHealthCheckPath("/h x")),
        ]
        for (config, error) in bad {
            #expect(throws: error) { try config.validated() }
        }
    }

    @Test("DNS names, IPv4 and IPv6 literals are accepted")
    func acceptsHosts() throws {
        let config = ExternalBalancerConfig(
            nodes: [node("a-1", 8081, host: "node-a.example.com"), node("b_2", 8082, host: "::1"), node("C", 8083, host: "10.0.0.3")],
            cookieName: "my-session", healthCheckPath: "/health?deep=1"
        )
        #expect(try config.validated() == config)
        let haproxy = try HAProxyConfig(balancer: config).render()
        #expect(haproxy.contains("server b_2 [::1]:8082 check"))
    }
}

@Suite("nginx configuration")
struct NginxConfigTests {
    @Test("a node called `any` gets its own group, apart from the one for requests without a route")
    func nodeCalledAny() throws {
        let text = try NginxConfig(balancer: ExternalBalancerConfig(nodes: [node("any", 8081), node("b", 8082)])).render()
        #expect(text.components(separatedBy: "upstream cohort_any {").count == 2)
        #expect(text.components(separatedBy: "upstream cohort-any {").count == 2)
    }

    @Test("a complete file: events, http, route map, one upstream per node with backups, failover")
    func structure() throws {
        let text = try NginxConfig(balancer: trio).render()
        let lines = directives(text)
        for required in [
            "events {", "http {", "pid nginx.pid;", "error_log error.log notice;", "proxy_temp_path proxy_temp;",
            "client_body_temp_path client_body_temp;", "map $http_cookie $cohort_upstream {", "default cohort-any;",
            "listen 127.0.0.1:8080;", "proxy_pass http://$cohort_upstream;", "proxy_connect_timeout 1s;",
            // With a request id, a POST that reached a node is retried: the node replays.
            "proxy_next_upstream error timeout non_idempotent;",
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            "proxy_set_header Cohort-Request-Id $cohort_request_id;",
            // Upstream keep-alive needs HTTP/1.1 and an empty Connection header.
            "proxy_http_version 1.1;", #"proxy_set_header Connection "";"#,
            // A read timeout spends the retry budget: a slow node's POST is never run twice.
            "proxy_read_timeout 10s;", "proxy_next_upstream_timeout 10s;",
        ] {
            #expect(lines.contains(required), "missing \(required)")
        }
        #expect(block("map $http_cohort_request_id $cohort_request_id_or_new {", in: text) == [
            "\"~^[A-Za-z0-9_-]{16,64}$\" $http_cohort_request_id;", "default $request_id;",
        ])
        #expect(block("map $request_method $cohort_request_id {", in: text) == [
            "default $cohort_request_id_or_new;", "GET $http_cohort_request_id;", "HEAD $http_cohort_request_id;",
            "PUT $http_cohort_request_id;", "DELETE $http_cohort_request_id;", "OPTIONS $http_cohort_request_id;",
            "TRACE $http_cohort_request_id;",
        ])
        #expect(!lines.contains { $0.hasPrefix("daemon") }, "daemon is left to -g so `-g 'daemon off;'` works")
        #expect(text.filter { $0 == "{" }.count == text.filter { $0 == "}" }.count)

        for name in ["n1", "n2", "n3"] {
            #expect(lines.contains(#""~(?:^|;)\s*COHORTSESSION=[^;]*\.\#(name)\s*(?:;|$)" cohort_\#(name);"#))
        }
        #expect(block("upstream cohort-any {", in: text) == [
            "zone cohort-any 64k;", "least_conn;",
            "server 127.0.0.1:8081 max_fails=1 fail_timeout=5s;",
            "server 127.0.0.1:8082 max_fails=1 fail_timeout=5s;",
            "server 127.0.0.1:8083 max_fails=1 fail_timeout=5s;", "keepalive 32;",
        ])
        #expect(block("upstream cohort_n2 {", in: text) == [
            "zone cohort_n2 64k;", "least_conn;",
            "server 127.0.0.1:8082 max_fails=1 fail_timeout=5s;",
            "server 127.0.0.1:8081 max_fails=1 fail_timeout=5s backup;",
            "server 127.0.0.1:8083 max_fails=1 fail_timeout=5s backup;", "keepalive 32;",
        ])
    }

    @Test("without request ids: no id, and a POST that reached a node is not retried")
    func withoutRequestIDs() throws {
        var config = trio
        config.requestIDs = false
        let text = try NginxConfig(balancer: config).render()
        let lines = directives(text)
        #expect(lines.contains("proxy_next_upstream error timeout http_502 http_503 http_504;"))
        #expect(!lines.contains { $0.contains("non_idempotent") }, "a POST that reached a node must not be replayed")
        #expect(!lines.contains { $0.contains("request_id") || $0.contains("Cohort-Request-Id") })
        #expect(text.filter { $0 == "{" }.count == text.filter { $0 == "}" }.count)
    }

    @Test("the route regex matches exactly the session cookie's route suffix")
    func routePatternSemantics() throws {
        let text = try NginxConfig(balancer: trio).render()
        let line = try #require(directives(text).first { $0.hasSuffix(" cohort_n1;") && $0.hasPrefix("\"~") })
        let pattern = String(line.dropFirst(2).prefix { $0 != "\"" })
        let regex = try NSRegularExpression(pattern: pattern)
        func matches(_ header: String) -> Bool {
            regex.firstMatch(in: header, range: NSRange(header.startIndex..., in: header)) != nil
        }
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAA"
        for header in ["COHORTSESSION=\(key).n1", "a=1; COHORTSESSION=\(key).n1", "a=1;COHORTSESSION=\(key).n1; b=2"] {
            #expect(matches(header), "\(header)")
        }
        for header in ["COHORTSESSION=\(key).n12", "COHORTSESSION=\(key).xn1", "XCOHORTSESSION=\(key).n1",
                       "cohortsession=\(key).n1", "COHORTSESSION=\(key).n2; other=\(key).n1", ""] {
            #expect(!matches(header), "\(header)")
        }
    }

    @Test("--prefix writes absolute, quoted paths and is validated")
    func prefix() throws {
        let text = try NginxConfig(balancer: trio, prefix: "/tmp/my lb/").render()
        let lines = directives(text)
        #expect(lines.contains(#"pid "/tmp/my lb/nginx.pid";"#))
        #expect(lines.contains(#"access_log "/tmp/my lb/access.log" combined buffer=64k flush=1s;"#))
        #expect(lines.contains(#"scgi_temp_path "/tmp/my lb/scgi_temp";"#))
        for bad in ["relative", "/tmp/x\"; evil", "/tmp/$x", "/tmp/a;b", "/tmp/{", "/tmp/\n", "/tmp/a\\b"] {
            #expect(throws: ExternalBalancerConfigError.invalidPrefix(bad)) { try NginxConfig(balancer: trio, prefix: bad).render() }
        }
    }
}

@Suite("HAProxy configuration")
struct HAProxyConfigTests {
    @Test("a complete file: global, defaults, frontend, backend with use-server per node")
    func structure() throws {
        let text = try HAProxyConfig(balancer: trio).render()
        let lines = directives(text)
        for required in [
            "global", "defaults", "mode http", "timeout connect 1s", "timeout client 30s", "timeout server 30s",
            "retries 2", "option redispatch 1", "retry-on conn-failure empty-response",
            "frontend cohort", "bind 127.0.0.1:8080", "option forwardfor", "default_backend cohort_nodes",
            "http-request set-header X-Forwarded-Proto http",
            "backend cohort_nodes", "balance leastconn", "option httpchk GET /health",
            // A POST is retried like a GET: it carries a request id the nodes replay by.
            "acl cohort_idempotent method GET HEAD PUT DELETE OPTIONS TRACE",
            "acl cohort_one_request_id req.hdr_cnt(Cohort-Request-Id) eq 1",
            "acl cohort_request_id_chars req.hdr(Cohort-Request-Id) -m reg ^[A-Za-z0-9_-]+$",
            "acl cohort_request_id_length req.hdr(Cohort-Request-Id),length 16:64",
            "http-request set-header Cohort-Request-Id %[uuid()] unless cohort_idempotent || cohort_one_request_id cohort_request_id_chars cohort_request_id_length",
        ] {
            #expect(lines.contains(required), "missing \(required)")
        }
        for (name, port) in [("n1", 8081), ("n2", 8082), ("n3", 8083)] {
            #expect(lines.contains("use-server \(name) if { req.cook(COHORTSESSION) -m end .\(name) }"))
            #expect(lines.contains("server \(name) 127.0.0.1:\(port) check inter 1s fall 2 rise 1"))
        }
        #expect(!lines.contains { $0.contains("disable-l7-retry") }, "a POST with a request id is safe to retry")
        #expect(lines.firstIndex(of: "frontend cohort")! < lines.firstIndex(of: "backend cohort_nodes")!)
    }

    @Test("without request ids: no id, and L7 retries only for idempotent methods")
    func withoutRequestIDs() throws {
        var config = trio
        config.requestIDs = false
        let lines = directives(try HAProxyConfig(balancer: config).render())
        #expect(lines.contains("http-request disable-l7-retry unless cohort_idempotent"))
        #expect(!lines.contains { $0.contains("uuid") || $0.contains("Cohort-Request-Id") })
    }
}
