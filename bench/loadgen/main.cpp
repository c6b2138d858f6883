// atlas-loadgen: an open-loop load generator for the evaluation (bench/loadgen/README.md).
#include "engine.hpp"
#include "interval_log.hpp"
#include "ldap.hpp"
#include "memcache.hpp"

#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <getopt.h>
#include <nlohmann/json.hpp>
#include <string>

using namespace atlas::loadgen;

namespace
{

const char usage[] =
    "usage: atlas-loadgen memcached|ldap [options]\n"
    "       atlas-loadgen ldap --ldif [--entries N] [--suffix DN]   the directory ldap checks "
    "against\n"
    "       atlas-loadgen merge LOG...      the runs' whole histograms merged, as JSON\n"
    "       atlas-loadgen intervals LOG     per interval: start end count p50 p99 p99.9 max "
    "(us)\n"
    "Exit status: 0, or 3 if any reply was wrong, lost or missing; 1 on failure to run, 2 on bad "
    "usage.\n"
    "  --server HOST:PORT    server (127.0.0.1:11211; ldap: 127.0.0.1:389)\n"
    "  --rate N              requests per second offered (1000)\n"
    "  --duration S          seconds of schedule (10)\n"
    "  --connections N       connections in all (8)\n"
    "  --threads N           generator threads (1)\n"
    "  --uniform             evenly spaced requests (default: Poisson arrivals)\n"
    "  --interval S          length of the per-interval histograms (1)\n"
    "  --drain S             how long replies are waited for after the schedule (5)\n"
    "  --seed N              random seed (1)\n"
    "  --keys N              key space (10000)\n"
    "  --value-size N        bytes per value (100)\n"
    "  --set F               fraction of sets (0.09)\n"
    "  --long F              fraction of multi-key gets (0.01)\n"
    "  --long-keys N         keys per multi-key get (100)\n"
    "  --no-setup            do not store the key space first\n"
    "ldap (the directory of --ldif, loaded into the server by slapadd):\n"
    "  --entries N           entries uid=u00000000,ou=people,SUFFIX ... (5000)\n"
    "  --suffix DN           the database's suffix, dc=NAME,... (dc=atlas,dc=test)\n"
    "  --long F              fraction of substring searches (cn=*DDD*) testing every entry "
    "(0.01)\n"
    "  (other requests: (&(objectClass=inetOrgPerson)(uid=u...)), one entry, its cn checked;\n"
    "  each connection first binds as an entry, a simple bind whose reply is checked)\n"
    "  --log FILE            one histogram line per interval (format: README.md)\n"
    "  --json                the result as JSON on stdout instead of the table\n";

bool parse_number(const char *text, double &out)
{
	char *end = nullptr;
	out = std::strtod(text, &end);
	return end && *end == '\0' && end != text && out >= 0;
}

double us(std::uint64_t ns)
{
	return static_cast<double>(ns) / 1000.0;
}

nlohmann::json summary(const Histogram &h)
{
	return {{"count", h.count()},
	        {"p50_us", us(h.quantile(0.5))},
	        {"p90_us", us(h.quantile(0.9))},
	        {"p99_us", us(h.quantile(0.99))},
	        {"p995_us", us(h.quantile(0.995))}, // the percentile WfPatch published
	        {"p999_us", us(h.quantile(0.999))},
	        {"p9999_us", us(h.quantile(0.9999))},
	        {"max_us", us(h.max())},
	        {"mean_us", h.mean() / 1000.0}};
}

void print_table(const Options &o, const Result &r)
{
	std::printf(
	    "offered %.0f req/s for %.1f s (%s), %u connections, %u thread(s); ran %.1f s\n",
	    o.rate, o.duration_s, o.poisson ? "Poisson" : "uniform", o.connections, o.threads,
	    r.elapsed_s);
	std::printf(
	    "sent %llu, answered %llu, wrong %llu, lost with a connection %llu, "
	    "unanswered %llu, reconnects %llu\n",
	    static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.answered),
	    static_cast<unsigned long long>(r.wrong), static_cast<unsigned long long>(r.errors),
	    static_cast<unsigned long long>(r.unanswered),
	    static_cast<unsigned long long>(r.reconnects));
	std::printf("latency from intended send time (us):\n");
	std::printf("  %-12s %10s %10s %10s %10s %10s %10s\n", "kind", "count", "p50", "p99",
	            "p99.9", "p99.99", "max");
	auto row = [](const std::string &name, const Histogram &h) {
		std::printf("  %-12s %10llu %10.1f %10.1f %10.1f %10.1f %10.1f\n", name.c_str(),
		            static_cast<unsigned long long>(h.count()), us(h.quantile(0.5)),
		            us(h.quantile(0.99)), us(h.quantile(0.999)), us(h.quantile(0.9999)),
		            us(h.max()));
	};
	row("all", r.latency);
	for (const auto &k : r.kinds)
		row(k.name, k.latency);
	std::printf("generator lateness (us): p99 %.1f, max %.1f%s\n",
	            us(r.send_lag.quantile(0.99)), us(r.send_lag.max()),
	            r.send_lag.quantile(0.99) > 1'000'000
	                ? " -- the generator could not keep its schedule: give it more threads or "
	                  "a core of its own"
	                : "");
	for (const auto &m : r.messages)
		std::printf("  %s\n", m.c_str());
}

// `merge LOG...`: the "# total" histograms of several runs (of one mode) merged.
int merge_logs(int argc, char **argv)
{
	if (argc < 3) {
		std::fputs(usage, stderr);
		return 2;
	}
	Histogram merged;
	for (int i = 2; i < argc; i++) {
		std::string error;
		auto log = read_interval_log(argv[i], &error);
		if (!log) {
			std::fprintf(stderr, "atlas-loadgen merge: %s\n", error.c_str());
			return 1;
		}
		if (!merged.merge(log->total)) {
			std::fprintf(
			    stderr,
			    "atlas-loadgen merge: %s: its histogram's range or precision "
			    "differs from the first log's; merge runs of one configuration\n",
			    argv[i]);
			return 1;
		}
	}
	nlohmann::json j = summary(merged);
	j["runs"] = argc - 2;
	std::printf("%s\n", j.dump(2).c_str());
	return 0;
}

// `intervals LOG`: latency over time, one line per interval, for plotting.
int print_intervals(int argc, char **argv)
{
	if (argc != 3) {
		std::fputs(usage, stderr);
		return 2;
	}
	std::string error;
	auto log = read_interval_log(argv[2], &error);
	if (!log) {
		std::fprintf(stderr, "atlas-loadgen intervals: %s\n", error.c_str());
		return 1;
	}
	std::printf("# start_s end_s count p50_us p99_us p999_us max_us\n");
	for (const auto &i : log->intervals)
		std::printf("%.3f %.3f %llu %.1f %.1f %.1f %.1f\n", i.start_s, i.end_s,
		            static_cast<unsigned long long>(i.latency.count()),
		            us(i.latency.quantile(0.5)), us(i.latency.quantile(0.99)),
		            us(i.latency.quantile(0.999)), us(i.latency.max()));
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
		std::fputs(usage, stdout);
		return 0;
	}
	if (argc >= 2 && std::string(argv[1]) == "merge")
		return merge_logs(argc, argv);
	if (argc >= 2 && std::string(argv[1]) == "intervals")
		return print_intervals(argc, argv);
	if (argc < 2 || (std::string(argv[1]) != "memcached" && std::string(argv[1]) != "ldap")) {
		std::fputs(usage, stderr);
		return 2;
	}
	const bool ldap = std::string(argv[1]) == "ldap";
	Options o;
	if (ldap)
		o.port = 389;
	MemcacheMix mix;
	LdapMix lmix;
	bool json = false, setup = true, print_ldif = false;
	std::string log_path;
	enum {
		server = 256,
		rate,
		duration,
		connections,
		threads,
		uniform,
		interval,
		drain,
		seed,
		keys,
		value_size,
		set,
		long_f,
		long_keys,
		no_setup,
		log,
		json_opt,
		entries,
		suffix,
		ldif,
		help
	};
	static const option longopts[] = {{"server", required_argument, nullptr, server},
	                                  {"rate", required_argument, nullptr, rate},
	                                  {"duration", required_argument, nullptr, duration},
	                                  {"connections", required_argument, nullptr, connections},
	                                  {"threads", required_argument, nullptr, threads},
	                                  {"uniform", no_argument, nullptr, uniform},
	                                  {"interval", required_argument, nullptr, interval},
	                                  {"drain", required_argument, nullptr, drain},
	                                  {"seed", required_argument, nullptr, seed},
	                                  {"keys", required_argument, nullptr, keys},
	                                  {"value-size", required_argument, nullptr, value_size},
	                                  {"set", required_argument, nullptr, set},
	                                  {"long", required_argument, nullptr, long_f},
	                                  {"long-keys", required_argument, nullptr, long_keys},
	                                  {"no-setup", no_argument, nullptr, no_setup},
	                                  {"log", required_argument, nullptr, log},
	                                  {"json", no_argument, nullptr, json_opt},
	                                  {"entries", required_argument, nullptr, entries},
	                                  {"suffix", required_argument, nullptr, suffix},
	                                  {"ldif", no_argument, nullptr, ldif},
	                                  {"help", no_argument, nullptr, help},
	                                  {nullptr, 0, nullptr, 0}};
	optind = 2;
	for (int c; (c = getopt_long(argc, argv, "", longopts, nullptr)) != -1;) {
		double v = 0;
		if (c == help) {
			std::fputs(usage, stdout);
			return 0;
		}
		const bool flag = c == uniform || c == no_setup || c == json_opt || c == ldif;
		if (c == '?') {
			std::fputs(usage, stderr);
			return 2;
		}
		if (!flag && c != server && c != log && c != suffix && !parse_number(optarg, v)) {
			std::fprintf(stderr,
			             "atlas-loadgen: --%s wants a non-negative number, not '%s'\n",
			             longopts[c - server].name, optarg);
			return 2;
		}
		switch (c) {
		case server: {
			const std::string s = optarg;
			const auto colon = s.rfind(':');
			double port = 0;
			if (colon == std::string::npos ||
			    !parse_number(s.substr(colon + 1).c_str(), port) || port < 1 ||
			    port > 65535) {
				std::fprintf(stderr,
				             "atlas-loadgen: --server wants HOST:PORT, not '%s'\n",
				             optarg);
				return 2;
			}
			o.host = s.substr(0, colon);
			o.port = static_cast<std::uint16_t>(port);
			break;
		}
		case rate:
			o.rate = v;
			break;
		case duration:
			o.duration_s = v;
			break;
		case connections:
			o.connections = static_cast<unsigned>(v);
			break;
		case threads:
			o.threads = static_cast<unsigned>(v);
			break;
		case uniform:
			o.poisson = false;
			break;
		case interval:
			o.interval_s = v;
			break;
		case drain:
			o.drain_s = v;
			break;
		case seed:
			o.seed = static_cast<std::uint64_t>(v);
			break;
		case keys:
			mix.keys = static_cast<std::uint64_t>(v);
			break;
		case value_size:
			mix.value_size = static_cast<std::size_t>(v);
			break;
		case set:
			mix.set_fraction = v;
			break;
		case long_f:
			mix.long_fraction = v;
			lmix.long_fraction = v;
			break;
		case entries:
			lmix.entries = static_cast<std::uint64_t>(v);
			break;
		case suffix:
			lmix.suffix = optarg;
			break;
		case ldif:
			print_ldif = true;
			break;
		case long_keys:
			mix.long_keys = static_cast<unsigned>(v);
			break;
		case no_setup:
			setup = false;
			break;
		case log:
			log_path = optarg;
			break;
		case json_opt:
			json = true;
			break;
		}
	}
	if (!ldap && mix.set_fraction + mix.long_fraction > 1) {
		std::fprintf(stderr, "atlas-loadgen: --set and --long add up to more than 1\n");
		return 2;
	}
	if (ldap &&
	    (!lmix.suffix.starts_with("dc=") || lmix.suffix.size() < 4 || lmix.suffix[3] == ',')) {
		std::fprintf(
		    stderr,
		    "atlas-loadgen: --suffix wants a DN that starts with dc=NAME, not '%s'\n",
		    lmix.suffix.c_str());
		return 2;
	}
	if (print_ldif) {
		if (!ldap) {
			std::fputs("atlas-loadgen: --ldif is an option of ldap\n", stderr);
			return 2;
		}
		const std::string text = Ldap(lmix).ldif();
		return std::fwrite(text.data(), 1, text.size(), stdout) == text.size() ? 0 : 1;
	}
	const ProtocolFactory factory =
	    ldap ? ProtocolFactory([&lmix] { return std::make_unique<Ldap>(lmix); })
	         : ProtocolFactory([&mix] { return std::make_unique<Memcache>(mix); });
	std::string error;
	if (setup && !run_setup(o, factory, error)) {
		std::fprintf(stderr, "atlas-loadgen: %s\n", error.c_str());
		return 1;
	}
	Result r;
	if (!run_load(o, factory, r, error)) {
		std::fprintf(stderr, "atlas-loadgen: %s\n", error.c_str());
		return 1;
	}
	if (!log_path.empty()) {
		std::ofstream out(log_path);
		out << "# atlas-loadgen interval log: <start s> <end s> <histogram of latencies in "
		       "ns "
		       "of requests due in the interval>\n";
		for (std::size_t i = 0; i < r.intervals.size(); i++)
			out << fmt::format("{:.3f} {:.3f} ", i * o.interval_s,
			                   (i + 1) * o.interval_s)
			    << r.intervals[i].serialize() << '\n';
		out << "# total " << r.latency.serialize() << '\n';
		if (!out) {
			std::fprintf(stderr, "atlas-loadgen: cannot write %s\n", log_path.c_str());
			return 1;
		}
	}
	if (json) {
		nlohmann::json j = {{"offered_rate", o.rate},
		                    {"duration_s", o.duration_s},
		                    {"elapsed_s", r.elapsed_s},
		                    {"start_monotonic_ns", r.start_monotonic_ns},
		                    {"sent", r.sent},
		                    {"answered", r.answered},
		                    {"wrong", r.wrong},
		                    {"errors", r.errors},
		                    {"unanswered", r.unanswered},
		                    {"reconnects", r.reconnects},
		                    {"latency", summary(r.latency)},
		                    {"send_lag", summary(r.send_lag)},
		                    {"messages", r.messages}};
		for (const auto &k : r.kinds)
			j["kinds"][k.name] = summary(k.latency);
		std::printf("%s\n", j.dump(2).c_str());
	} else {
		print_table(o, r);
	}
	return r.wrong || r.errors || r.unanswered ? 3 : 0;
}
