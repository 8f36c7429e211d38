#include "postern/tls/context.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "postern/log/log.hpp"
#include "postern/util/atomic_write.hpp"

namespace postern::tls {

namespace {

constexpr std::string_view cert_name = "tls-selfsigned.crt";
constexpr std::string_view key_name = "tls-selfsigned.key";
constexpr long validity_seconds = 10L * 365 * 24 * 60 * 60;
constexpr int rsa_bits = 2048;

// TLS 1.2 suites: forward secrecy and AEAD only (Mozilla "intermediate"
// without DHE). TLS 1.3 suites keep OpenSSL's defaults, all AEAD.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct bio_free {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct x509_free {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
struct pkey_free {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct bn_free {
    void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};
struct ext_free {
    void operator()(X509_EXTENSION* e) const noexcept { X509_EXTENSION_free(e); }
};
using bio_ptr = std::unique_ptr<BIO, bio_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using bn_ptr = std::unique_ptr<BIGNUM, bn_free>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, ext_free>;

// Drains OpenSSL's error queue into one line ("no start line; ...").
std::string openssl_reason()
{
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        const char* r = ERR_reason_error_string(e);
        std::string one = r ? r : ("error " + std::to_string(e));
        if (out.find(one) != std::string::npos)
            continue;
        if (!out.empty())
            out += "; ";
        out += one;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

[[noreturn]] void fail(std::string_view what, const std::string& file)
{
    std::string msg = "tls: ";
    msg += what;
    if (!file.empty())
        msg += " " + file;
    throw std::runtime_error(msg + ": " + openssl_reason());
}

// The settings both sides share: TLS 1.2 at least, no compression, no
// renegotiation (CVE-2009-3555 and renegotiation DoS), buffers released when idle.
void apply_common_policy(SSL_CTX* ctx)
{
    ERR_clear_error();
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        fail("setting the minimum protocol version", {});
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    // An idle connection gives its record buffers (~34 KiB) back: thousands
    // of sessions sit idle between commands.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

// A file OpenSSL could not open reports "system lib"; say what the OS said.
void check_readable(const std::string& path, std::string_view what)
{
    if (::access(path.c_str(), R_OK) != 0)
        throw std::runtime_error("tls: " + std::string(what) + " " + path + ": " + std::strerror(errno));
}

// A host name we may put in CN and subjectAltName: LDH labels and dots only
// (keeps the X509V3 configuration string below free of ',' and ':').
bool is_dns_name(std::string_view h)
{
    if (h.empty() || h.size() > 253 || h.front() == '.' || h.front() == '-')
        return false;
    for (char c : h)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.')
            return false;
    return true;
}

std::string bio_contents(BIO* b)
{
    std::string out(BIO_ctrl_pending(b), '\0');
    if (!out.empty() && BIO_read(b, out.data(), static_cast<int>(out.size())) != static_cast<int>(out.size()))
        throw std::runtime_error("tls: reading a memory BIO: " + openssl_reason());
    return out;
}

// The existing pair, if it is still good for hostname.
bool reusable(const server_tls_files& f, const std::string& hostname)
{
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(f.certificate, ec) || !fs::exists(f.private_key, ec))
        return false;
    bio_ptr cb(BIO_new_file(f.certificate.c_str(), "r"));
    bio_ptr kb(BIO_new_file(f.private_key.c_str(), "r"));
    x509_ptr cert(cb ? PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr) : nullptr);
    pkey_ptr key(kb ? PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr) : nullptr);
    bool ok = cert && key && X509_check_private_key(cert.get(), key.get()) == 1 &&
              X509_check_host(cert.get(), hostname.data(), hostname.size(), 0, nullptr) == 1 &&
              X509_cmp_current_time(X509_get0_notAfter(cert.get())) > 0;
    ERR_clear_error();
    if (!ok)
        log::warn("tls_selfsigned_replace").kv("certificate", f.certificate)
            .kv("reason", "unreadable, mismatched, expired or for another host name");
    return ok;
}

void add_extension(X509* cert, int nid, const std::string& value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    ext_ptr ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
        fail("adding certificate extension " + std::string(OBJ_nid2sn(nid)), {});
}

// The PEM bytes of a new self-signed key and certificate.
std::pair<std::string, std::string> generate(const std::string& hostname)
{
    ERR_clear_error();
    // RSA rather than EC: peers of an MTA include old stacks without ECDSA.
    pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits)));
    if (!key)
        fail("generating an RSA key", {});
    x509_ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1)
        fail("creating a certificate", {});

    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1)
        fail("drawing a serial number", {});
    serial[0] &= 0x7f; // positive and at most 20 octets (RFC 5280 4.1.2.2)
    serial[0] |= 0x01; // never zero
    bn_ptr bn(BN_bin2bn(serial, sizeof serial, nullptr));
    if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())))
        fail("setting the serial number", {});

    if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert.get()), validity_seconds))
        fail("setting the validity period", {});
    if (X509_set_pubkey(cert.get(), key.get()) != 1)
        fail("setting the public key", {});

    X509_NAME* name = X509_get_subject_name(cert.get());
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(hostname.c_str()), -1, -1, 0) != 1 ||
        X509_set_issuer_name(cert.get(), name) != 1)
        fail("setting the subject name", {});

    add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), NID_subject_key_identifier, "hash");
    add_extension(cert.get(), NID_ext_key_usage, "serverAuth,clientAuth");
    add_extension(cert.get(), NID_subject_alt_name, "DNS:" + hostname);

    if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0)
        fail("signing the certificate", {});

    bio_ptr kb(BIO_new(BIO_s_mem()));
    bio_ptr cb(BIO_new(BIO_s_mem()));
    if (!kb || !cb || PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
        PEM_write_bio_X509(cb.get(), cert.get()) != 1)
        fail("encoding PEM", {});
    return {bio_contents(kb.get()), bio_contents(cb.get())};
}

} // namespace

asio::ssl::context make_server_context(const server_tls_files& f)
{
    asio::ssl::context ctx(asio::ssl::context::tls_server);
    SSL_CTX* h = ctx.native_handle();
    apply_common_policy(h);
    SSL_CTX_set_options(h, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(h, tls12_ciphers) != 1)
        fail("setting the TLS 1.2 cipher list", {});

    check_readable(f.certificate, "certificate file");
    check_readable(f.private_key, "private key file");
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(h, f.certificate.c_str()) != 1)
        fail("certificate file", f.certificate);
    if (SSL_CTX_use_PrivateKey_file(h, f.private_key.c_str(), SSL_FILETYPE_PEM) != 1)
        fail("private key file", f.private_key);
    if (SSL_CTX_check_private_key(h) != 1)
        fail("private key file " + f.private_key + " does not match certificate file", f.certificate);
    return ctx;
}

server_tls_files ensure_self_signed(const std::string& dir, const std::string& hostname, bool& created)
{
    namespace fs = std::filesystem;
    created = false;
    if (!is_dns_name(hostname))
        throw std::runtime_error("tls: cannot make a certificate for host name '" + hostname + "'");
    server_tls_files f{(fs::path(dir) / cert_name).string(), (fs::path(dir) / key_name).string()};
    if (reusable(f, hostname))
        return f;

    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        throw std::runtime_error("tls: creating directory " + dir + ": " + ec.message());
    auto [key_pem, cert_pem] = generate(hostname);
    // The key first: a certificate on disk always has its key beside it.
    if (auto r = util::atomic_write(dir, key_name, key_pem); !r) // mode 0600
        throw std::runtime_error("tls: writing " + f.private_key + ": " + r.error().message());
    if (auto r = util::atomic_write(dir, cert_name, cert_pem); !r)
        throw std::runtime_error("tls: writing " + f.certificate + ": " + r.error().message());
    if (::chmod(f.certificate.c_str(), 0644) != 0)
        throw std::runtime_error("tls: chmod " + f.certificate + ": " + std::strerror(errno));
    created = true;
    return f;
}

asio::ssl::context make_client_context(tls_verify verify)
{
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    SSL_CTX* h = ctx.native_handle();
    // OpenSSL's default cipher list: a relay talks to whatever the Internet
    // runs, and opportunistic encryption beats plain text.
    apply_common_policy(h);
    switch (verify) {
    case tls_verify::none:
        SSL_CTX_set_verify(h, SSL_VERIFY_NONE, nullptr);
        break;
    case tls_verify::verify:
        if (SSL_CTX_set_default_verify_paths(h) != 1)
            fail("loading the system CA certificates", {});
        SSL_CTX_set_verify(h, SSL_VERIFY_PEER, nullptr);
        break;
    }
    return ctx;
}

std::string describe(const SSL* ssl)
{
    if (!ssl)
        return {};
    std::string out = SSL_get_version(ssl);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
        out += ' ';
        out += SSL_CIPHER_get_name(c);
    }
    return out;
}

server_contexts::server_contexts(server_tls_files files)
    : files_(std::move(files)),
      current_(std::make_shared<asio::ssl::context>(make_server_context(files_)))
{
}

std::string server_contexts::reload(server_tls_files files)
{
    try {
        current_ = std::make_shared<asio::ssl::context>(make_server_context(files));
        files_ = std::move(files);
        return {};
    } catch (const std::exception& e) {
        return e.what();
    }
}

std::string server_contexts::reload()
{
    try {
        current_ = std::make_shared<asio::ssl::context>(make_server_context(files_));
        return {};
    } catch (const std::exception& e) {
        return e.what();
    }
}

} // namespace postern::tls
