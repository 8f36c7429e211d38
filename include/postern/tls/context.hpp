// tls/context.hpp — OpenSSL context factories, the server's certificate files,
// self-signed generation, and a reload-friendly holder of the server context.
// Policy: TLS 1.2 and 1.3 only; no compression, no renegotiation. The server
// prefers its own ciphers (TLS 1.2: ECDHE with AEAD only); session tickets on.
// Errors: the factories and ensure_self_signed() run at start-up and throw
// std::runtime_error naming the file and OpenSSL's reason. server_contexts::reload()
// runs later and reports failure as a value, keeping the old context.
// Thread: the factories may run anywhere; server_contexts belongs to the event loop.
#pragma once

#include <memory>
#include <string>

#include <asio/ssl/context.hpp>
#include <openssl/ssl.h>

namespace postern::tls {

// PEM files: the certificate chain (leaf first) and its private key.
struct server_tls_files {
    std::string certificate;
    std::string private_key;
};

// How a client treats the server's certificate.
//   none:   encrypt without checking (opportunistic, Postfix's "may"/"encrypt");
//   verify: the chain must lead to a system CA (SSL_CTX_set_default_verify_paths);
//           the host name check itself is stream::handshake_client's verify_host.
enum class tls_verify { none, verify };

// Loads and checks f (chain, key, that they match). Throws std::runtime_error.
asio::ssl::context make_server_context(const server_tls_files& f);

// Returns dir/tls-selfsigned.crt and dir/tls-selfsigned.key. Existing files are
// reused when they parse, match each other, name hostname and have not
// expired; otherwise a new pair is generated (RSA 2048, X.509 v3, random
// serial, 10 years, CN and subjectAltName DNS:hostname, SHA-256) and written
// atomically: the key 0600, the certificate 0644. created says whether new
// files were written (the caller logs it). dir is created if missing.
// Throws std::runtime_error (bad host name, unwritable dir, OpenSSL failure).
server_tls_files ensure_self_signed(const std::string& dir, const std::string& hostname, bool& created);

// A client context (TLS 1.2+). Callers may adjust it further through
// native_handle() before the first handshake (tests add trust anchors so).
asio::ssl::context make_client_context(tls_verify verify);

// "TLSv1.3 TLS_AES_256_GCM_SHA384": protocol version and cipher of an
// established connection, for Received: headers and logs. Empty for nullptr.
std::string describe(const SSL* ssl);

// The server context in use, replaceable at run time (SIGHUP, renewed
// certificates). Connections keep the shared_ptr they took in current() for
// their lifetime, so a reload never disturbs a handshake in progress.
class server_contexts {
public:
    // Loads the files now; throws std::runtime_error like make_server_context().
    explicit server_contexts(server_tls_files files);

    std::shared_ptr<asio::ssl::context> current() const { return current_; }
    const server_tls_files& files() const noexcept { return files_; }

    // Re-reads the files. Returns an empty string on success; otherwise the
    // reason (file and OpenSSL's words), and the old context stays in use.
    [[nodiscard]] std::string reload();
    // The same with other files (a reloaded configuration names new ones):
    // they are used from now on only when they load.
    [[nodiscard]] std::string reload(server_tls_files files);

private:
    server_tls_files files_;
    std::shared_ptr<asio::ssl::context> current_;
};

} // namespace postern::tls
