// SPDX-License-Identifier: MIT
// The redirect engine: what a loaded patch does after load_patch() returned it, on the
// patcher thread and in its view (docs/live-patching.md, "Stacking"): apply() writes a jump
// at each redirect site, revert() restores what it found, in_effect() reads whether it is
// applied here, unreachable() unmaps it.
#include "loader_internal.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

// Runs and forgets the destructors registered with __cxa_atexit for one DSO handle: the
// patch's static objects must not be destroyed at exit from unmapped text.
extern "C" void __cxa_finalize(void *dso);

namespace atlas::patch::detail
{

namespace
{

class Mem
{
public:
	// /proc/thread-self/mem of the calling thread's view (wait-free mode: the new one the
	// patcher migrated into; /proc/self/mem would be the leader's). Writes through it reach
	// read-only text without making it writable (the kernel copies the page on write).
	Mem() : fd_(open_own_mem()) {}
	~Mem()
	{
		if (fd_ >= 0)
			::close(fd_);
	}
	Mem(const Mem &) = delete;
	Mem &operator=(const Mem &) = delete;
	int error() const
	{
		return fd_ < 0 ? errno_ : 0;
	}
	bool read(uint64_t addr, uint8_t *buf, size_t n)
	{
		return ::pread(fd_, buf, n, off_t(addr)) == ssize_t(n);
	}
	bool write(uint64_t addr, const uint8_t *buf, size_t n)
	{
		return ::pwrite(fd_, buf, n, off_t(addr)) == ssize_t(n);
	}

private:
	// A process that changed its credentials (a server started as root that dropped to its
	// own user) is not dumpable, and then /proc/self belongs to root and refuses the open,
	// although the kernel lets a process access its own memory. Dumpable for the open only:
	// the descriptor stays usable, and for those microseconds another process of the same
	// user could attach with ptrace, as it could to any dumpable process of that user.
	static int open_own_mem()
	{
		int fd = ::open("/proc/thread-self/mem", O_RDWR | O_CLOEXEC);
		if (fd >= 0 || errno != EACCES || prctl(PR_GET_DUMPABLE) != 0)
			return fd;
		if (prctl(PR_SET_DUMPABLE, 1) != 0) {
			errno = EACCES;
			return -1;
		}
		fd = ::open("/proc/thread-self/mem", O_RDWR | O_CLOEXEC);
		const int saved = errno;
		prctl(PR_SET_DUMPABLE, 0);
		errno = saved;
		return fd;
	}

	int fd_;
	int errno_ = errno;
};

Jump make_jump(uint64_t site, uint64_t dest)
{
	int32_t rel = int32_t(int64_t(dest - (site + jump_size)));
	Jump j{0xe9};
	std::memcpy(j.data() + 1, &rel, 4);
	return j;
}

// What each applied redirect wrote over, process-wide: for a jump found at a redirect site,
// the bytes that were there before it (the original, or the jump of the patch below it). The
// jump's destination lies in the text of the patch that wrote it, so the jump identifies that
// patch; recorded by apply(), dropped when the patch is unmapped. in_effect() follows it from
// the bytes it reads at a site down to its own jump (in effect, a later patch on top) or to
// something else (reverted, and the function patched again by another patch). A leaf lock:
// nothing else is locked while it is held.
class Layers
{
public:
	void record(uint64_t site, const Jump &written, const Jump &found)
	{
		std::lock_guard lock(mu_);
		try {
			below_[{site, written}] = found;
		} catch (...) {
			// Unrecorded: in_effect() then treats the site as not this patch's.
		}
	}
	void forget(uint64_t site, const Jump &written)
	{
		std::lock_guard lock(mu_);
		below_.erase({site, written});
	}
	// Whether `mine` is in the stack of jumps whose top is `now` at `site`.
	bool under(uint64_t site, Jump now, const Jump &mine) const
	{
		std::lock_guard lock(mu_);
		for (size_t depth = 0; depth <= below_.size(); depth++) {
			if (now == mine)
				return true;
			auto it = below_.find({site, now});
			if (it == below_.end())
				return false;
			now = it->second;
		}
		return false;
	}

private:
	mutable std::mutex mu_;
	std::map<std::pair<uint64_t, Jump>, Jump> below_;
};

Layers &layers()
{
	static Layers *l = new Layers; // never destroyed: patches may be released at exit
	return *l;
}

// What every redirect entry holds in the calling thread's view, for apply() and revert(); a
// failure names the patch.
Expected<void> read_entries(const std::string &identity, const std::vector<RedirectSite> &redirects,
                            Mem &mem, std::vector<Jump> &entries)
{
	if (mem.error())
		return make_error(Errc::system,
		                  fmt::format("{}: cannot open /proc/thread-self/mem: {}", identity,
		                              std::strerror(mem.error())),
		                  mem.error());
	entries.resize(redirects.size());
	for (size_t i = 0; i < redirects.size(); i++)
		if (!mem.read(redirects[i].site, entries[i].data(), jump_size)) {
			const int err = errno;
			return make_error(
			    Errc::system,
			    fmt::format("{}: cannot read the entry of '{}' at 0x{:x}: {}", identity,
			                redirects[i].name, redirects[i].site, std::strerror(err)),
			    err);
		}
	return Expected<void>{};
}

} // namespace

Expected<void> PatchImpl::apply()
{
	std::lock_guard lock(mu_);
	if (unmapped_)
		return make_error(Errc::bad_state, identity_ + ": the patch was unmapped");
	Mem mem;
	std::vector<Jump> saved;
	if (Expected<void> read = read_entries(identity_, redirects_, mem, saved); !read)
		return read;
	// Applied or not is a property of the caller's view: the entries tell (see mu_).
	if (redirects_.empty() ? applied_ : all_jump_here(saved))
		return make_error(Errc::bad_state, identity_ + ": already applied");
	// Stacking (also when called directly, not through the runtime): every patch whose
	// code or data this one uses must be in effect here, or the redirects would lead
	// into code calling a reverted or unmapped base. Bases are older: no lock cycle.
	for (const auto &base : bases_) {
		Expected<void> there = base->in_effect();
		if (!there)
			return make_error(
			    Errc::bad_state,
			    fmt::format(
			        "{}: stacked on {} (it uses its code or data), which is not in "
			        "effect: {}; nothing changed. Apply {} again, then load {} "
			        "anew "
			        "on top of it",
			        identity_, base->identity(), there.error().message,
			        base->identity(), identity_));
	}
	for (size_t i = 0; i < redirects_.size(); i++) {
		const RedirectSite &r = redirects_[i];
		Jump j = make_jump(r.site, r.destination);
		if (!mem.write(r.site, j.data(), jump_size)) {
			int e = errno;
			// Undo the redirects already written: all or nothing.
			for (size_t k = i; k-- > 0;)
				(void)mem.write(redirects_[k].site, saved[k].data(), jump_size);
			return make_error(
			    Errc::system,
			    fmt::format("{}: cannot write the redirect of '{}' at 0x{:x} through "
			                "/proc/thread-self/mem: {}; nothing was changed",
			                identity_, r.name, r.site, std::strerror(e)),
			    e);
		}
	}
	for (size_t i = 0; i < redirects_.size(); i++)
		layers().record(redirects_[i].site,
		                make_jump(redirects_[i].site, redirects_[i].destination), saved[i]);
	saved_ = std::move(saved);
	applied_ = true;
	written_ = true;
	return Expected<void>{};
}

Expected<void> PatchImpl::revert()
{
	std::lock_guard lock(mu_);
	if (!written_)
		return make_error(Errc::bad_state, identity_ + ": not applied");
	Mem mem;
	std::vector<Jump> now;
	if (Expected<void> read = read_entries(identity_, redirects_, mem, now); !read)
		return read;
	// Not applied in this view: every entry holds what apply() found there. The
	// flag alone would be wrong in wait-free mode: a revert() done in a view that the
	// runtime then deleted (revert_pending) cleared it while the base still jumps here.
	if (redirects_.empty() ? !applied_ : now == saved_)
		return make_error(Errc::bad_state, identity_ + ": not applied");
	// Last in, first out per function: each entry must still hold this patch's jump,
	// else a later patch of that function is applied on top and must be reverted first.
	for (size_t i = 0; i < redirects_.size(); i++) {
		const RedirectSite &r = redirects_[i];
		if (now[i] != make_jump(r.site, r.destination))
			return make_error(
			    Errc::bad_state,
			    fmt::format("{}: '{}' at 0x{:x} no longer jumps to this patch: a later "
			                "patch of "
			                "it is applied; revert that one first (last in, first out)",
			                identity_, r.name, r.site));
	}
	for (size_t i = redirects_.size(); i-- > 0;) {
		if (!mem.write(redirects_[i].site, saved_[i].data(), jump_size)) {
			int e = errno;
			for (size_t k = i + 1; k < redirects_.size(); k++) {
				Jump j = make_jump(redirects_[k].site, redirects_[k].destination);
				(void)mem.write(redirects_[k].site, j.data(), jump_size);
			}
			return make_error(
			    Errc::system,
			    fmt::format("{}: cannot restore the entry of '{}' at 0x{:x}: {}; "
			                "the patch stays applied",
			                identity_, redirects_[i].name, redirects_[i].site,
			                std::strerror(e)),
			    e);
		}
	}
	applied_ = false;
	return Expected<void>{};
}

Expected<void> PatchImpl::in_effect() const
{
	std::lock_guard lock(mu_);
	if (unmapped_)
		return make_error(Errc::bad_state,
		                  identity_ + " was released (reverted and unmapped)");
	if (!written_)
		return make_error(Errc::bad_state, identity_ + " was never applied");
	if (redirects_.empty())
		return applied_ ? Expected<void>{}
		                : make_error(Errc::bad_state, identity_ + " was reverted");
	Mem mem;
	if (mem.error())
		return make_error(
		    Errc::system,
		    fmt::format("cannot open /proc/thread-self/mem to read the entries of {}: {}",
		                identity_, std::strerror(mem.error())),
		    mem.error());
	std::vector<Jump> now(redirects_.size());
	for (size_t i = 0; i < redirects_.size(); i++)
		if (!mem.read(redirects_[i].site, now[i].data(), jump_size)) {
			const int err = errno;
			return make_error(Errc::system,
			                  fmt::format("cannot read the entry of '{}' at 0x{:x}: {}",
			                              redirects_[i].name, redirects_[i].site,
			                              std::strerror(err)),
			                  err);
		}
	// In effect: every entry holds this patch's jump, or a later patch's whose jumps
	// lead down to it (stacked on top). Every entry as apply() found it: reverted here.
	// Another jump that does not lead here: reverted, and patched again by another
	// patch (say another copy of this one).
	if (now == saved_)
		return make_error(Errc::bad_state, identity_ + " is reverted in this view");
	for (size_t i = 0; i < redirects_.size(); i++) {
		const RedirectSite &r = redirects_[i];
		if (!layers().under(r.site, now[i], make_jump(r.site, r.destination)))
			return make_error(
			    Errc::bad_state,
			    fmt::format(
			        "{} is reverted in this view: '{}' at 0x{:x} leads to another "
			        "patch that was not applied on top of it",
			        identity_, r.name, r.site));
	}
	return Expected<void>{};
}

void PatchImpl::unreachable() noexcept
{
	std::lock_guard lock(mu_);
	// The flags only say what the last apply()/revert() did, in whichever view it ran:
	// in wait-free mode that view is deleted when its transition is undone
	// (revert_pending). What counts is whether a redirect is visible here (the runtime
	// calls this when one view is left): if so the code is reachable, keep it.
	if (unmapped_ || (written_ && redirect_visible()))
		return;
	unmapped_ = true;
	if (before_unmap_) {
		try {
			before_unmap_();
		} catch (...) {
		}
	}
	for (const RedirectSite &r : redirects_)
		layers().forget(r.site, make_jump(r.site, r.destination));
	if (dso_handle_)
		__cxa_finalize(dso_handle_);
	if (eh_frame_)
		deregister_eh_frame(eh_frame_);
	munmap(reinterpret_cast<void *>(base_), rx_size_ + rw_size_);
}

// Whether an entry still holds this patch's jump in the calling thread's view; true also
// when that cannot be read (keep the code rather than unmap it under a thread).
bool PatchImpl::redirect_visible()
{
	Mem mem;
	if (mem.error())
		return true;
	for (const RedirectSite &r : redirects_) {
		Jump now{};
		if (!mem.read(r.site, now.data(), jump_size) ||
		    now == make_jump(r.site, r.destination))
			return true;
	}
	return false;
}

// Whether every entry holds this patch's jump (`entries` read in the caller's view).
bool PatchImpl::all_jump_here(const std::vector<Jump> &entries) const
{
	for (size_t i = 0; i < redirects_.size(); i++)
		if (entries[i] != make_jump(redirects_[i].site, redirects_[i].destination))
			return false;
	return true;
}

} // namespace atlas::patch::detail
