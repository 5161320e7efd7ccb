"""stack_test: runs a test program of any language against real servers started for it alone.

The wrapped test (tagged "manual", so `bazel test //...` runs it only through this wrapper) gets
KAFKA_BROKERS, REDIS_URL, MONGO_URL and the services' URLs (GRPC_FRONT_URL, WASM_PRODUCER_URL,
API_URL, WEB_URL); `stack exec`
(go/cmd/stack) starts the servers on free ports in the test's temp dir and stops them when it
ends, failing or not.
"""

load("@rules_shell//shell:sh_binary.bzl", "sh_binary")
load("@rules_shell//shell:sh_test.bzl", "sh_test")

STACK_PROGRAMS = {
    "api": "//node:api",
    "api-node-modules": "@node_deps//:node_modules",
    "consumer": "//go/cmd/consumer",
    "ferretdb": "//go/cmd/ferretdb",
    "grpc-front": "//go/cmd/grpc-front",
    "grpc-producer": "//go/cmd/grpc-producer",
    "kafka-jars": "@kafka_jars//:jars",
    "kafka-log4j": "//tools/kafka:log4j2.properties",
    "wasm-producer": "//rust:wasm_producer_aot",
    "web": "//go/cmd/web",
    "web-dist": "//vue:dist",
    # Not a program: the ballot both producers check votes against (proto/ballot.json).
    "ballot": "//proto:ballot",
}

# data and env of a go_test that drives go/internal/stack itself (stacktest.Config reads them):
# every stack program, and its runfiles path in STACK_<FLAG> (kafka-jars: STACK_KAFKA_JARS).
STACK_TEST_DATA = STACK_PROGRAMS.values()

STACK_TEST_ENV = {
    "STACK_" + flag.upper().replace("-", "_"): "$(rootpath %s)" % label
    for flag, label in STACK_PROGRAMS.items()
}

def stack_args(programs = STACK_PROGRAMS):
    """The flags that tell go/cmd/stack where each server's program is, as runfiles paths."""
    return ["--%s=$(rootpath %s)" % (flag, label) for flag, label in programs.items()]

def _stack_exec_args(program, servers, program_args, stack_env = {}, kafka_nodes = 1):
    return ["$(rootpath //go/cmd/stack)"] + stack_args() + [
        "--servers=" + ",".join(servers),
        "--kafka-nodes=%d" % kafka_nodes,
    ] + [
        # $$ is Bazel's escape for $: stack exec expands ${NAME} itself.
        "--setenv=%s=%s" % (name, value.replace("$", "$$"))
        for name, value in stack_env.items()
    ] + [
        "--",
        "$(rootpath %s)" % program,
    ] + program_args

def stack_test(name, test, servers = ["kafka", "redis", "mongo"], size = "medium", stack_env = {}, **kwargs):
    """A test that runs `test` under `stack exec` with the given servers.

    Args:
      name: the test's name.
      test: the label of the test binary to run (tag it "manual").
      servers: which processes to start (with what they need): kafka, redis, mongo, and
        Tally's services such as grpc-front (names in go/internal/stack).
      size: the test size (starting Kafka takes seconds).
      stack_env: extra variables for the test, whose values may name the stack's own as ${NAME},
        e.g. {"PRODUCER_URL": "${GRPC_FRONT_URL}"}.
      **kwargs: passed to sh_test.
    """
    sh_test(
        name = name,
        srcs = ["//tools/stack:stack_exec.sh"],
        args = _stack_exec_args(test, servers, [], stack_env),
        data = ["//go/cmd/stack", test] + STACK_PROGRAMS.values(),
        size = size,
        **kwargs
    )

def stack_binary(name, binary, servers = ["kafka", "redis", "mongo"], args = [], stack_env = {}, data = [], kafka_nodes = 1, **kwargs):
    """`bazel run`s binary (a benchmark, say) under `stack exec` with the given servers.

    Args:
      name: the target's name.
      binary: the label of the program to run.
      servers: which processes to start (with what they need), as for stack_test.
      args: the program's own arguments.
      stack_env: extra variables for the program, whose values may name the stack's own as
        ${NAME}, as for stack_test.
      data: more files the program reads (named in args with $(rootpath)).
      kafka_nodes: Kafka's KRaft nodes, 1 or 3 (a cluster like the deployed one).
      **kwargs: passed to sh_binary (env there reaches the servers too: they inherit it).
    """
    sh_binary(
        name = name,
        srcs = ["//tools/stack:stack_exec.sh"],
        args = _stack_exec_args(binary, servers, args, stack_env, kafka_nodes),
        data = ["//go/cmd/stack", binary] + STACK_PROGRAMS.values() + data,
        **kwargs
    )
