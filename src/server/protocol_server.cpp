#include "postern/server/protocol_server.hpp"

#include <utility>

#include "postern/server/session_io.hpp"

namespace postern::server {

protocol_server::protocol_server(std::shared_ptr<service> svc, spawn_fn spawn)
    : svc_(std::move(svc)), spawn_(std::move(spawn))
{
}

protocol_server::~protocol_server() = default;

void protocol_server::bind()
{
    svc_->bind();
}

void protocol_server::start()
{
    svc_->start(spawn_);
}

void protocol_server::stop()
{
    svc_->stop();
}

void protocol_server::shutdown()
{
    svc_->shutdown();
}

void protocol_server::force_close()
{
    svc_->force_close();
}

std::size_t protocol_server::sessions() const noexcept
{
    return svc_->sessions();
}

service& protocol_server::listeners() noexcept
{
    return *svc_;
}

} // namespace postern::server
