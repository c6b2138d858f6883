// The contract of address-space views (view_semantics.hpp) on the simulation
// (lib/internal/atlas/simulated_views.hpp), natively: one test per case,
// unit.contract.SimulatedViews.<case>. The same cases run on the kernel in the guest
// (guest.view_semantics).
#include "view_semantics.hpp"

#include <gtest/gtest.h>

namespace
{

using namespace atlas_contract;

class OnSimulation : public testing::Test
{
public:
	explicit OnSimulation(const Case &c) : case_(c) {}
	void TestBody() override
	{
		const Outcome out = run_case(case_.run, make_simulation_backend);
		EXPECT_TRUE(out.passed) << out.log;
	}

private:
	const Case &case_;
};

// The harness cannot pass a case that fails: a failed expectation, a crash (a death by a signal;
// SIGKILL, which the sanitizers do not catch) and a hang are each reported with what happened.
TEST(ContractHarness, ReportsFailedExpectationsCrashesAndHangs)
{
	Outcome out = run_case(
	    [](Backend &b, Check &c) {
		    VIEW_RETURNS(c, b.ops().current(), 0);
		    VIEW_FAILS(c, b.ops().remove(0), EINVAL); // it is EPERM
		    VIEW_RETURNS(c, b.ops().migrate(7), 0);   // it is EINVAL
	    },
	    make_simulation_backend);
	EXPECT_FALSE(out.passed);
	EXPECT_NE(out.log.find("b.ops().remove(0) failed EPERM, expected to fail EINVAL"),
	          std::string::npos)
	    << out.log;
	EXPECT_NE(out.log.find("b.ops().migrate(7) failed EINVAL, expected to return 0"),
	          std::string::npos)
	    << out.log;
	EXPECT_EQ(out.log.find("current()"), std::string::npos) << out.log;

	out = run_case([](Backend &, Check &) { raise(SIGKILL); }, make_simulation_backend);
	EXPECT_FALSE(out.passed);
	EXPECT_NE(out.log.find("child killed by SIGKILL"), std::string::npos) << out.log;

	out = run_case(
	    [](Backend &, Check &c) {
		    alarm(1);
		    Steps steps(c);
		    steps.wait_for(1, __LINE__);
	    },
	    make_simulation_backend);
	EXPECT_FALSE(out.passed);
	EXPECT_NE(out.log.find("child killed by SIGALRM"), std::string::npos) << out.log;

	out = run_case([](Backend &, Check &) {}, make_simulation_backend);
	EXPECT_TRUE(out.passed) << out.log;
}

} // namespace

int main(int argc, char **argv)
{
	testing::InitGoogleTest(&argc, argv);
	for (const Case &c : cases())
		testing::RegisterTest("SimulatedViews", c.name, nullptr, nullptr, __FILE__,
		                      __LINE__,
		                      [&c]() -> testing::Test * { return new OnSimulation(c); });
	return RUN_ALL_TESTS();
}
