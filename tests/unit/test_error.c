/* util/error: the first cause wins, and each step on the way out can put
 * its context ahead of it ("restoring snapshot: vCPU 0: ..."). */
#include <errno.h>

#include "harness.h"
#include "util/error.h"

static void first_cause_wins(void)
{
	struct vmp_error err = {0};
	CHECK(vmp_fail(&err, -EINVAL, "inner %d", 1) == -EINVAL);
	CHECK(vmp_fail(&err, -EIO, "outer") == -EIO);
	CHECK(err.code == -EINVAL);
	CHECK(!strcmp(err.msg, "inner 1"));
}

static void errno_text_is_appended(void)
{
	struct vmp_error err = {0};
	vmp_fail_errno(&err, -ENOENT, "cannot open %s", "x");
	CHECK_MSG(!strcmp(err.msg, "cannot open x: No such file or directory"), "%s", err.msg);
}

static void context_reads_outermost_first(void)
{
	struct vmp_error err = {0};
	vmp_fail(&err, -EINVAL, "KVM_SET_SREGS: Invalid argument");
	vmp_error_context(&err, "vCPU %u", 0u);
	vmp_error_context(&err, "restoring snapshot");
	CHECK(err.code == -EINVAL);
	CHECK_MSG(!strcmp(err.msg, "restoring snapshot: vCPU 0: KVM_SET_SREGS: Invalid argument"),
	          "%s", err.msg);
}

static void context_without_failure_does_nothing(void)
{
	struct vmp_error err = {0};
	vmp_error_context(&err, "restoring snapshot");
	CHECK(err.code == 0);
	CHECK(err.msg[0] == '\0');
	vmp_error_context(NULL, "no error object");
}

static void context_is_truncated_not_overflowed(void)
{
	struct vmp_error err = {0};
	char longer[2 * VMP_ERROR_MAX];
	memset(longer, 'c', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	vmp_fail(&err, -E2BIG, "%s", longer);
	CHECK(strlen(err.msg) == VMP_ERROR_MAX - 1);
	vmp_error_context(&err, "%s", longer);
	CHECK(strlen(err.msg) == VMP_ERROR_MAX - 1);
	CHECK(err.msg[0] == 'c');
	CHECK(err.code == -E2BIG);
}

TEST_LIST(T(first_cause_wins), T(errno_text_is_appended), T(context_reads_outermost_first),
          T(context_without_failure_does_nothing), T(context_is_truncated_not_overflowed))
