// The open-loop engine (see engine.hpp).
#include "engine.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <random>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <thread>
#include <time.h>
#include <unistd.h>

namespace atlas::loadgen
{

namespace
{

constexpr std::size_t max_messages = 10;
constexpr std::uint64_t reconnect_delay_ns = 100'000'000;

std::uint64_t now_ns()
{
	timespec ts{};
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
	       static_cast<std::uint64_t>(ts.tv_nsec);
}

void note(Result &r, std::string message)
{
	if (r.messages.size() < max_messages)
		r.messages.push_back(std::move(message));
}

// A connected TCP socket (blocking), or -1 with `error` set.
int open_connection(const Options &o, std::string &error)
{
	addrinfo hints{};
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	addrinfo *found = nullptr;
	const std::string port = std::to_string(o.port);
	if (int rc = getaddrinfo(o.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
		error = fmt::format("cannot resolve {}: {}", o.host, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	int last_errno = 0;
	for (addrinfo *a = found; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		last_errno = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(found);
	if (fd < 0) {
		error = fmt::format("cannot connect to {}:{}: {}", o.host, o.port,
		                    std::strerror(last_errno));
		return -1;
	}
	const int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

struct Pending {
	std::uint64_t intended = 0;
	Request req;
	bool scheduled = true; // false: the connection's opening request (Protocol::opening)
};

struct Conn {
	int fd = -1;
	std::string out;
	std::size_t out_off = 0;
	std::string in;
	std::size_t in_off = 0;
	std::deque<Pending> waiting; // in the order queued: the reply order unless tagged
	bool polling_out = false;
	std::uint64_t retry_at = 0;
};

// One generator thread: its share of the schedule over its own connections.
class Worker
{
public:
	Worker(const Options &o, Protocol &p, unsigned index, unsigned conns, double rate)
	    : o_(o), p_(p), tagged_(p.tagged()), rng_(o.seed * 0x9e3779b97f4a7c15ULL + index),
	      rate_(rate), conns_(conns)
	{
		const auto kinds = p_.kinds();
		for (const auto &k : kinds)
			r_.kinds.push_back(KindStats{k, 0, Histogram()});
		const double n = std::ceil(o_.duration_s / o_.interval_s);
		r_.intervals.assign(static_cast<std::size_t>(std::max(1.0, n)), Histogram());
	}
	~Worker()
	{
		for (auto &c : conns_)
			if (c.fd >= 0)
				close(c.fd);
		if (ep_ >= 0)
			close(ep_);
	}

	bool open(std::string &error)
	{
		ep_ = epoll_create1(EPOLL_CLOEXEC);
		if (ep_ < 0) {
			error = fmt::format("epoll_create1: {}", std::strerror(errno));
			return false;
		}
		for (auto &c : conns_)
			if (!reopen(c, error))
				return false;
		return true;
	}

	void run(std::uint64_t start);
	Result &result()
	{
		return r_;
	}

private:
	bool reopen(Conn &c, std::string &error);
	void fail(Conn &c, const std::string &why, std::uint64_t now);
	void flush(Conn &c, std::uint64_t now);
	void receive(Conn &c);
	void watch_out(Conn &c, bool on);
	void account(const Pending &p, ReplyStatus status, const std::string &why, std::uint64_t t);
	std::uint64_t gap_ns();

	const Options &o_;
	Protocol &p_;
	bool tagged_; // replies matched by tag, in any order
	std::mt19937_64 rng_;
	double rate_;
	std::vector<Conn> conns_;
	std::size_t next_conn_ = 0;
	std::uint64_t opened_ = 0; // connections opened, for Protocol::opening
	int ep_ = -1;
	Result r_;
	std::uint64_t start_ = 0;
};

bool Worker::reopen(Conn &c, std::string &error)
{
	const int fd = open_connection(o_, error);
	if (fd < 0)
		return false;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	epoll_event ev{};
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.ptr = &c;
	if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
		error = fmt::format("epoll_ctl: {}", std::strerror(errno));
		close(fd);
		return false;
	}
	c.fd = fd;
	c.polling_out = false;
	Pending opening{now_ns(), {}, false};
	if (p_.opening(opened_++, opening.req)) {
		c.out += opening.req.bytes;
		c.waiting.push_back(std::move(opening));
		flush(c, now_ns());
		if (c.fd < 0) {
			error = "cannot send the connection's opening request";
			return false;
		}
	}
	return true;
}

// The connection's requests are lost: count them, close it, and retry it later.
void Worker::fail(Conn &c, const std::string &why, std::uint64_t now)
{
	const auto lost = static_cast<std::uint64_t>(std::count_if(
	    c.waiting.begin(), c.waiting.end(), [](const Pending &p) { return p.scheduled; }));
	if (lost)
		note(r_, fmt::format("connection failed ({}): {} request(s) lost", why, lost));
	r_.errors += lost;
	c.waiting.clear();
	c.out.clear();
	c.out_off = 0;
	c.in.clear();
	c.in_off = 0;
	if (c.fd >= 0)
		close(c.fd);
	c.fd = -1;
	c.retry_at = now + reconnect_delay_ns;
}

void Worker::watch_out(Conn &c, bool on)
{
	if (c.polling_out == on)
		return;
	epoll_event ev{};
	ev.events = EPOLLIN | EPOLLRDHUP | (on ? static_cast<std::uint32_t>(EPOLLOUT) : 0u);
	ev.data.ptr = &c;
	epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
	c.polling_out = on;
}

void Worker::flush(Conn &c, std::uint64_t now)
{
	while (c.out_off < c.out.size()) {
		const ssize_t n =
		    send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
		if (n > 0) {
			c.out_off += static_cast<std::size_t>(n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			watch_out(c, true); // the server is not reading: its stall shows in latency
			return;
		}
		fail(c, fmt::format("send: {}", std::strerror(errno)), now);
		return;
	}
	c.out.clear();
	c.out_off = 0;
	watch_out(c, false);
}

void Worker::receive(Conn &c)
{
	char buf[65536];
	std::string closed; // why the connection ended, after what it sent before is parsed
	for (;;) {
		const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
		if (n > 0) {
			c.in.append(buf, static_cast<std::size_t>(n));
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		closed = n == 0 ? std::string("closed by the server")
		                : fmt::format("recv: {}", std::strerror(errno));
		break;
	}
	const std::uint64_t t = now_ns(); // every reply parsed below had arrived by now
	std::string why;
	while (tagged_ && c.in_off < c.in.size()) {
		std::size_t length = 0;
		std::uint64_t tag = 0;
		const std::string_view in = std::string_view(c.in).substr(c.in_off);
		auto status = p_.frame(in, length, tag, why);
		if (status == ReplyStatus::incomplete)
			break;
		const auto it =
		    status == ReplyStatus::broken
		        ? c.waiting.end()
		        : std::find_if(c.waiting.begin(), c.waiting.end(),
		                       [tag](const Pending &p) { return p.req.tag == tag; });
		if (status != ReplyStatus::broken && it == c.waiting.end()) {
			status = ReplyStatus::broken;
			why = fmt::format("a reply tagged {} answers no outstanding request", tag);
		}
		if (status != ReplyStatus::broken)
			status = p_.feed(it->req, in.substr(0, length), why);
		if (status == ReplyStatus::broken) {
			note(r_, fmt::format("unparsable reply: {}", why));
			r_.wrong++;
			if (it != c.waiting.end())
				c.waiting.erase(it);
			fail(c, "unparsable reply", t);
			return;
		}
		c.in_off += length;
		if (status == ReplyStatus::incomplete)
			continue;
		account(*it, status, why, t);
		c.waiting.erase(it);
	}
	while (!tagged_ && !c.waiting.empty()) {
		std::size_t consumed = 0;
		const Pending &front = c.waiting.front();
		const auto status =
		    p_.parse(front.req, std::string_view(c.in).substr(c.in_off), consumed, why);
		if (status == ReplyStatus::incomplete)
			break;
		if (status == ReplyStatus::broken) {
			note(r_, fmt::format("unparsable reply: {}", why));
			r_.wrong++;
			c.waiting.pop_front();
			fail(c, "unparsable reply", t);
			return;
		}
		account(front, status, why, t);
		c.in_off += consumed;
		c.waiting.pop_front();
	}
	if (!closed.empty()) {
		fail(c, closed, t);
		return;
	}
	if (c.waiting.empty() && c.in_off < c.in.size()) {
		note(r_, "the server sent bytes no request asked for");
		fail(c, "unsolicited reply", t);
		return;
	}
	if (c.in_off == c.in.size()) {
		c.in.clear();
		c.in_off = 0;
	} else if (c.in_off > (1u << 20)) {
		c.in.erase(0, c.in_off);
		c.in_off = 0;
	}
}

// A complete reply (ok or wrong) that had arrived by t.
void Worker::account(const Pending &p, ReplyStatus status, const std::string &why, std::uint64_t t)
{
	const std::uint64_t latency = t > p.intended ? t - p.intended : 0;
	if (!p.scheduled && status == ReplyStatus::ok)
		return;
	if (status == ReplyStatus::ok) {
		r_.answered++;
		r_.latency.record(latency);
		if (p.req.kind < r_.kinds.size()) {
			r_.kinds[p.req.kind].answered++;
			r_.kinds[p.req.kind].latency.record(latency);
		}
		const auto slot = static_cast<std::size_t>(
		    static_cast<double>(p.intended - start_) / 1e9 / o_.interval_s);
		r_.intervals[std::min(slot, r_.intervals.size() - 1)].record(latency);
	} else {
		r_.wrong++;
		note(r_, fmt::format("wrong reply: {}", why));
	}
}

std::uint64_t Worker::gap_ns()
{
	if (!o_.poisson)
		return static_cast<std::uint64_t>(1e9 / rate_);
	return static_cast<std::uint64_t>(std::exponential_distribution<double>(rate_)(rng_) * 1e9);
}

void Worker::run(std::uint64_t start)
{
	start_ = start;
	const auto end = start + static_cast<std::uint64_t>(o_.duration_s * 1e9);
	const auto drain_end = end + static_cast<std::uint64_t>(o_.drain_s * 1e9);
	std::uint64_t next = start + gap_ns();
	bool sending = true;
	std::vector<Conn *> dirty;
	epoll_event events[64];
	for (;;) {
		std::uint64_t now = now_ns();
		// Every request due by now, each stamped with the time it was due.
		while (sending && next <= now) {
			if (next >= end) {
				sending = false;
				break;
			}
			r_.sent++;
			Conn *c = nullptr;
			for (std::size_t i = 0; i < conns_.size() && !c; i++) {
				Conn &cand = conns_[next_conn_++ % conns_.size()];
				if (cand.fd >= 0)
					c = &cand;
			}
			if (!c) {
				r_.errors++;
				note(r_, "a request was due while every connection was down");
			} else {
				Pending pending{next, {}};
				p_.next(rng_, pending.req);
				c->out += pending.req.bytes;
				c->waiting.push_back(std::move(pending));
				r_.send_lag.record(now - next);
				dirty.push_back(c);
			}
			next += std::max<std::uint64_t>(gap_ns(), 1);
		}
		for (Conn *c : dirty)
			if (c->fd >= 0 && !c->polling_out)
				flush(*c, now);
		dirty.clear();
		std::uint64_t wake = sending ? next : drain_end;
		for (auto &c : conns_) {
			if (c.fd >= 0 || !sending)
				continue;
			if (c.retry_at <= now) {
				std::string error;
				if (reopen(c, error))
					r_.reconnects++;
				else
					c.retry_at = now + reconnect_delay_ns;
			}
			if (c.fd < 0)
				wake = std::min(wake, c.retry_at);
		}
		if (!sending) {
			std::size_t left = 0;
			for (const auto &c : conns_)
				left += static_cast<std::size_t>(
				    std::count_if(c.waiting.begin(), c.waiting.end(),
				                  [](const Pending &p) { return p.scheduled; }));
			if (left == 0)
				break;
			if (now >= drain_end) {
				r_.unanswered += left;
				note(r_,
				     fmt::format("{} request(s) unanswered {} s after the schedule "
				                 "ended",
				                 left, o_.drain_s));
				break;
			}
		}
		const std::uint64_t wait = wake > now ? wake - now : 0;
		timespec timeout{static_cast<time_t>(wait / 1'000'000'000ULL),
		                 static_cast<long>(wait % 1'000'000'000ULL)};
		const int n = epoll_pwait2(ep_, events, 64, &timeout, nullptr);
		for (int i = 0; i < n; i++) {
			Conn &c = *static_cast<Conn *>(events[i].data.ptr);
			if (c.fd < 0)
				continue;
			if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				receive(c);
			if (c.fd >= 0 && (events[i].events & EPOLLOUT))
				flush(c, now_ns());
		}
	}
}

void merge_into(Result &to, const Result &from)
{
	to.latency.merge(from.latency);
	to.send_lag.merge(from.send_lag);
	if (to.intervals.size() < from.intervals.size())
		to.intervals.resize(from.intervals.size());
	for (std::size_t i = 0; i < from.intervals.size(); i++)
		to.intervals[i].merge(from.intervals[i]);
	if (to.kinds.empty())
		for (const auto &k : from.kinds)
			to.kinds.push_back(KindStats{k.name, 0, Histogram()});
	for (std::size_t i = 0; i < from.kinds.size() && i < to.kinds.size(); i++) {
		to.kinds[i].answered += from.kinds[i].answered;
		to.kinds[i].latency.merge(from.kinds[i].latency);
	}
	to.sent += from.sent;
	to.answered += from.answered;
	to.wrong += from.wrong;
	to.errors += from.errors;
	to.unanswered += from.unanswered;
	to.reconnects += from.reconnects;
	for (const auto &m : from.messages)
		if (to.messages.size() < max_messages)
			to.messages.push_back(m);
}

bool write_all(int fd, const std::string &bytes)
{
	std::size_t off = 0;
	while (off < bytes.size()) {
		const ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		off += static_cast<std::size_t>(n);
	}
	return true;
}

} // namespace

bool run_setup(const Options &options, const ProtocolFactory &factory, std::string &error)
{
	auto protocol = factory();
	const int fd = open_connection(options, error);
	if (fd < 0)
		return false;
	constexpr std::size_t batch = 64;
	std::string in, why;
	bool ok = true;
	for (std::size_t index = 0; ok;) {
		std::vector<Request> sent;
		std::string out;
		Request req;
		while (sent.size() < batch && protocol->setup(index, req)) {
			out += req.bytes;
			sent.push_back(req);
			index++;
		}
		if (sent.empty())
			break;
		if (!write_all(fd, out)) {
			error = fmt::format("setup: send: {}", std::strerror(errno));
			ok = false;
			break;
		}
		std::size_t done = 0;
		while (ok && done < sent.size()) {
			std::size_t consumed = 0;
			const auto status = protocol->parse(sent[done], in, consumed, why);
			if (status == ReplyStatus::incomplete) {
				char buf[65536];
				const ssize_t n = recv(fd, buf, sizeof(buf), 0);
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					error = n == 0
					            ? std::string(
					                  "setup: the server closed the connection")
					            : fmt::format("setup: recv: {}",
					                          std::strerror(errno));
					ok = false;
				} else {
					in.append(buf, static_cast<std::size_t>(n));
				}
				continue;
			}
			if (status != ReplyStatus::ok) {
				error = fmt::format("setup: {}", why);
				ok = false;
				break;
			}
			in.erase(0, consumed);
			done++;
		}
	}
	close(fd);
	return ok;
}

bool run_load(const Options &options, const ProtocolFactory &factory, Result &result,
              std::string &error)
{
	if (!(options.rate > 0) || !(options.duration_s > 0) || !(options.interval_s > 0) ||
	    options.connections == 0 || options.threads == 0) {
		error = "rate, duration, interval, connections and threads must be positive";
		return false;
	}
	const unsigned threads = std::min(options.threads, options.connections);
	std::vector<std::unique_ptr<Protocol>> protocols;
	std::vector<std::unique_ptr<Worker>> workers;
	for (unsigned t = 0; t < threads; t++) {
		const unsigned conns =
		    options.connections / threads + (t < options.connections % threads ? 1 : 0);
		protocols.push_back(factory());
		workers.push_back(std::make_unique<Worker>(options, *protocols.back(), t, conns,
		                                           options.rate / threads));
		if (!workers.back()->open(error))
			return false;
	}
	const std::uint64_t start = now_ns();
	std::vector<std::thread> running;
	for (auto &w : workers)
		running.emplace_back([&w, start] { w->run(start); });
	for (auto &t : running)
		t.join();
	result = Result();
	for (auto &w : workers)
		merge_into(result, w->result());
	result.elapsed_s = static_cast<double>(now_ns() - start) / 1e9;
	result.start_monotonic_ns = start;
	return true;
}

} // namespace atlas::loadgen
