// ViewOps on the real mmview syscall (atlas/mmview.h).
#include <atlas/mmview.h>
#include <atlas/runtime.hpp>

#include <cerrno>

namespace atlas
{

namespace
{

ViewResult from_syscall(long ret) noexcept
{
	if (ret < 0)
		return ViewResult{0, errno};
	return ViewResult{ret, 0};
}

class KernelViewOps final : public ViewOps
{
public:
	ViewResult create() override
	{
		return from_syscall(mmview_create());
	}
	ViewResult remove(ViewId id) override
	{
		return from_syscall(mmview_delete(id));
	}
	ViewResult migrate(ViewId id) override
	{
		return from_syscall(mmview_migrate(id));
	}
	ViewResult current() override
	{
		return from_syscall(mmview_current());
	}
	ViewResult switch_base() override
	{
		return from_syscall(mmview_switch_base());
	}
	ViewResult unshare(std::uintptr_t start, std::size_t len) override
	{
		return from_syscall(mmview_unshare(reinterpret_cast<void *>(start), len));
	}
	ViewResult share(std::uintptr_t start, std::size_t len) override
	{
		return from_syscall(mmview_share(reinterpret_cast<void *>(start), len));
	}
};

} // namespace

std::unique_ptr<ViewOps> kernel_view_ops()
{
	return std::make_unique<KernelViewOps>();
}

} // namespace atlas
