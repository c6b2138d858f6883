// The open-loop engine of the load generator. Requests are due on a fixed schedule (Poisson or
// evenly spaced arrivals at the offered rate) whatever the server does; each latency is measured
// from the request's intended send time, not from when it was written, so a server that stalls
// shows the stall in every request that was due during it (no coordinated omission). Requests
// are spread round-robin over the connections; a reply is matched to its request by order
// (memcached, HTTP/1.1) or, for a protocol whose replies are tagged (Protocol::tagged(): LDAP's
// message ids), by its tag, message by message, in whatever order the server answers.
#ifndef ATLAS_LOADGEN_ENGINE_HPP
#define ATLAS_LOADGEN_ENGINE_HPP

#include "histogram.hpp"
#include "protocol.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace atlas::loadgen
{

struct Options {
	std::string host = "127.0.0.1";
	std::uint16_t port = 11211;
	double rate = 1000;       // requests per second offered, over all threads
	double duration_s = 10;   // of the schedule
	unsigned connections = 8; // in all; at least one per thread
	unsigned threads = 1;     // generator threads, each with its share of rate and connections
	bool poisson = true;      // exponential gaps; else evenly spaced
	double interval_s = 1;    // length of the per-interval histograms
	double drain_s = 5;       // after the schedule, how long replies are waited for
	std::uint64_t seed = 1;
};

struct KindStats {
	std::string name;
	std::uint64_t answered = 0;
	Histogram latency;
};

struct Result {
	Histogram latency;                // every answered request, ns from its intended send time
	std::vector<Histogram> intervals; // by intended send time, Options::interval_s each
	std::vector<KindStats> kinds;
	Histogram send_lag;           // ns from intended to actual write: the generator's own delay
	std::uint64_t sent = 0;       // requests due (each written or failed)
	std::uint64_t answered = 0;   // replies complete and right
	std::uint64_t wrong = 0;      // replies complete but wrong
	std::uint64_t errors = 0;     // requests lost with a connection (or never written)
	std::uint64_t unanswered = 0; // no reply within the drain time
	std::uint64_t reconnects = 0;
	std::vector<std::string> messages; // the first few errors and wrong replies, said plainly
	double elapsed_s = 0;
	std::uint64_t start_monotonic_ns = 0; // the schedule's start (CLOCK_MONOTONIC)
};

using ProtocolFactory = std::function<std::unique_ptr<Protocol>()>;

// Sends every setup request of one protocol instance over one connection and checks the
// replies (closed loop, pipelined). False with `error` saying what failed.
bool run_setup(const Options &options, const ProtocolFactory &factory, std::string &error);

// Runs the schedule. Connection failures are counted, not fatal: a connection that fails is
// reopened. Fails (false, `error`) only when no connection can be opened at the start.
bool run_load(const Options &options, const ProtocolFactory &factory, Result &result,
              std::string &error);

} // namespace atlas::loadgen

#endif
