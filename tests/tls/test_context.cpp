#include "postern/tls/context.hpp"

#include <sys/stat.h>

#include <memory>
#include <stdexcept>
#include <string>

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "postern/util/atomic_write.hpp"
#include "tls_fixture.hpp"

using namespace postern::tls;
using postern::tls::testing::shared_pair;
using postern::tls::testing::temp_dir;
using postern::util::atomic_write;
using postern::util::read_file;

namespace {

struct x509_free {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
struct pkey_free {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct bio_free {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};

std::unique_ptr<X509, x509_free> load_cert(const std::string& path)
{
    std::unique_ptr<BIO, bio_free> b(BIO_new_file(path.c_str(), "r"));
    return std::unique_ptr<X509, x509_free>(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
}

std::unique_ptr<EVP_PKEY, pkey_free> load_key(const std::string& path)
{
    std::unique_ptr<BIO, bio_free> b(BIO_new_file(path.c_str(), "r"));
    return std::unique_ptr<EVP_PKEY, pkey_free>(
        b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr) : nullptr);
}

std::string common_name(X509* cert)
{
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return buf;
}

unsigned file_mode(const std::string& path)
{
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

// Whether constructing from f throws a runtime_error whose text names `file`.
std::string error_of(const server_tls_files& f)
{
    try {
        (void)make_server_context(f);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return {};
}

} // namespace

TEST_SUITE("tls") {

TEST_CASE("ensure_self_signed creates a matching key and certificate for the host, then reuses them")
{
    temp_dir d;
    bool created = false;
    auto f = ensure_self_signed(d.str("sub"), "mail.example.org", created);
    CHECK(created);
    CHECK(f.certificate == d.str("sub/tls-selfsigned.crt"));
    CHECK(f.private_key == d.str("sub/tls-selfsigned.key"));
    CHECK(file_mode(f.private_key) == 0600);
    CHECK(file_mode(f.certificate) == 0644);

    auto cert = load_cert(f.certificate);
    auto key = load_key(f.private_key);
    REQUIRE(cert);
    REQUIRE(key);
    CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
    CHECK(common_name(cert.get()) == "mail.example.org");
    // X509_check_host() consults subjectAltName (and ignores CN when a SAN is present).
    CHECK(X509_check_host(cert.get(), "mail.example.org", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) == 1);
    CHECK(X509_check_host(cert.get(), "other.example.org", 0, 0, nullptr) != 1);
    CHECK(X509_get_version(cert.get()) == X509_VERSION_3);
    CHECK(X509_get_signature_nid(cert.get()) == NID_sha256WithRSAEncryption);
    CHECK(X509_check_issued(cert.get(), cert.get()) == X509_V_OK); // self-signed
    // Ten years, give or take leap days.
    int days = 0, secs = 0;
    REQUIRE(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())) == 1);
    CHECK(days >= 3649);
    CHECK(days <= 3653);
    CHECK_NOTHROW((void)make_server_context(f));

    auto bytes = read_file(f.certificate);
    REQUIRE(bytes);

    // Sequential rather than SUBCASEs: each generation costs an RSA key.
    bool again = true;
    auto g = ensure_self_signed(d.str("sub"), "mail.example.org", again);
    CHECK_FALSE(again); // the second call reuses the same files
    CHECK(g.certificate == f.certificate);
    CHECK(*read_file(g.certificate) == *bytes);

    // A damaged key is replaced, and so is its certificate.
    REQUIRE(atomic_write(d.str("sub"), "tls-selfsigned.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"));
    g = ensure_self_signed(d.str("sub"), "mail.example.org", again);
    CHECK(again);
    CHECK(*read_file(g.certificate) != *bytes);
    CHECK(file_mode(g.private_key) == 0600);
    CHECK_NOTHROW((void)make_server_context(g));

    // A new host name gets a new certificate.
    g = ensure_self_signed(d.str("sub"), "mx2.example.org", again);
    CHECK(again);
    auto c2 = load_cert(g.certificate);
    REQUIRE(c2);
    CHECK(common_name(c2.get()) == "mx2.example.org");
}

TEST_CASE("ensure_self_signed refuses a host name that cannot go into a certificate")
{
    temp_dir d;
    bool created = true;
    for (const char* h : {"", "a,IP:1.2.3.4", "-x.example", "mail example"}) {
        CAPTURE(h);
        CHECK_THROWS_AS((void)ensure_self_signed(d.str(), h, created), std::runtime_error);
        CHECK_FALSE(created);
    }
}

TEST_CASE("make_server_context names the file it cannot use")
{
    temp_dir d;
    const auto& good = shared_pair();
    REQUIRE(atomic_write(d.str(), "garbage.pem", "this is not PEM\n"));
    REQUIRE(atomic_write(d.str(), "truncated.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n"));

    SUBCASE("a certificate file that is not PEM")
    {
        auto e = error_of({d.str("garbage.pem"), good.private_key});
        CAPTURE(e);
        CHECK(e.find(d.str("garbage.pem")) != std::string::npos);
        CHECK(e.find("certificate") != std::string::npos);
    }
    SUBCASE("a truncated certificate")
    {
        auto e = error_of({d.str("truncated.pem"), good.private_key});
        CAPTURE(e);
        CHECK(e.find(d.str("truncated.pem")) != std::string::npos);
    }
    SUBCASE("a key file that is not PEM")
    {
        auto e = error_of({good.certificate, d.str("garbage.pem")});
        CAPTURE(e);
        CHECK(e.find(d.str("garbage.pem")) != std::string::npos);
        CHECK(e.find("private key") != std::string::npos);
    }
    SUBCASE("a missing file")
    {
        auto e = error_of({d.str("missing.crt"), good.private_key});
        CAPTURE(e);
        CHECK(e.find(d.str("missing.crt")) != std::string::npos);
        CHECK(e.find("No such file") != std::string::npos);
    }
}

TEST_CASE("make_server_context rejects a key that belongs to another certificate")
{
    temp_dir d;
    bool created = false;
    auto other = ensure_self_signed(d.str(), "other.test", created);
    const auto& mine = shared_pair();
    auto e = error_of({mine.certificate, other.private_key});
    CAPTURE(e);
    REQUIRE_FALSE(e.empty());
    CHECK(e.find(other.private_key) != std::string::npos);
}

TEST_CASE("the server context allows TLS 1.2 and 1.3 only, prefers its ciphers and never renegotiates")
{
    auto ctx = make_server_context(shared_pair());
    SSL_CTX* h = ctx.native_handle();
    CHECK(SSL_CTX_get_min_proto_version(h) == TLS1_2_VERSION);
    auto opts = SSL_CTX_get_options(h);
    CHECK((opts & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0);
    CHECK((opts & SSL_OP_NO_COMPRESSION) != 0);
    CHECK((opts & SSL_OP_NO_RENEGOTIATION) != 0);
    CHECK((opts & SSL_OP_NO_TICKET) == 0);
    // Every TLS 1.2 suite is ECDHE with an AEAD cipher.
    STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(h);
    REQUIRE(ciphers);
    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
        const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
        CAPTURE(SSL_CIPHER_get_name(c));
        if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any)
            continue; // TLS 1.3 suites (all AEAD; key exchange negotiated apart)
        CHECK(SSL_CIPHER_get_kx_nid(c) == NID_kx_ecdhe);
        CHECK(SSL_CIPHER_is_aead(c) == 1);
    }
}

TEST_CASE("client contexts verify the peer only when asked")
{
    SUBCASE("none")
    {
        auto ctx = make_client_context(tls_verify::none);
        CHECK(SSL_CTX_get_verify_mode(ctx.native_handle()) == SSL_VERIFY_NONE);
        CHECK(SSL_CTX_get_min_proto_version(ctx.native_handle()) == TLS1_2_VERSION);
    }
    SUBCASE("verify")
    {
        auto ctx = make_client_context(tls_verify::verify);
        CHECK(SSL_CTX_get_verify_mode(ctx.native_handle()) == SSL_VERIFY_PEER);
        CHECK(SSL_CTX_get_min_proto_version(ctx.native_handle()) == TLS1_2_VERSION);
    }
}

TEST_CASE("describe of no connection is empty")
{
    CHECK(describe(nullptr).empty());
}

TEST_CASE("server_contexts keeps the old context when a reload fails")
{
    temp_dir d;
    bool created = false;
    auto f = ensure_self_signed(d.str(), "reload.test", created);
    server_contexts holder(f);
    auto first = holder.current();
    REQUIRE(first);

    // Good files replace the context; the old one lives on with its holders.
    CHECK(holder.reload().empty());
    auto second = holder.current();
    CHECK(second != first);
    CHECK(first.use_count() == 1);

    // A broken file is reported and the context in use stays.
    REQUIRE(atomic_write(d.str(), "tls-selfsigned.crt", "broken\n"));
    auto err = holder.reload();
    CAPTURE(err);
    CHECK(err.find(f.certificate) != std::string::npos);
    CHECK(holder.current() == second);
}

}
