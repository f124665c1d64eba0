"""The SAM template keeps the properties the design depends on (no AWS account needed)."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
LAYER_MAKEFILE = ROOT / "layers" / "shared" / "Makefile"

FUNCTIONS = {
    "OrchestratorFunction": "functions/orchestrator/",
    "QueueProcessorFunction": "functions/queue_processor/",
    "PremiumExtractorFunction": "functions/premium_extractor/",
    "CommentsExtractorFunction": "functions/comments_extractor/",
}
SOURCE_QUEUES = ("HighPriorityQueue", "BackfillQueue")
SHARED_ENV = (
    "DATABASE_SECRET_ARN",
    "SNAPSHOT_BUCKET",
    "HIGH_QUEUE_URL",
    "BACKFILL_QUEUE_URL",
    "DLQ_URL",
    "REQUEST_INTERVAL_SECONDS",
    "BACKFILL_BATCH_SIZE",
    "BACKFILL_PRIORITY",
    "DISCOVERY_ENABLED",
    "DISCOVERY_MAX_PAGES",
    "SWEEP_PAGES_PER_RUN",
    "MAX_ATTEMPTS",
    "SCHEDULE_MINUTES",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
)
EXTRACTOR_ENV = ("PREMIUM_EXTRACTOR_FUNCTION", "COMMENTS_EXTRACTOR_FUNCTION")
DASHBOARD_METRICS = (
    "QueuePending100",
    "QueuePending75",
    "QueueProcessing",
    "QueueFailed",
    "ApproximateNumberOfMessagesVisible",
    "JobsCompleted",
    "JobsFailed",
    "JobsRetried",
    "FieldsRepaired",
    "OutcomesCorrected",
    "BatResponse2xx",
    "BatResponse4xx",
    "BatResponse429",
    "BatResponse5xx",
    "BatFetchErrors",
    "IndexPagesRead",
    "IndexItems",
    "IndexDisagreements",
)


class CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that reads CloudFormation short-form tags as their long-form dicts."""


def _construct_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct_tag)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    with TEMPLATE.open(encoding="utf-8") as fh:
        loaded = yaml.load(fh, Loader=CfnLoader)  # a SafeLoader subclass: safe
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


def _function_property(template: dict[str, Any], logical_id: str, name: str) -> Any:
    """A function's property, falling back to Globals.Function like SAM does."""
    props = template["Resources"][logical_id]["Properties"]
    if name in props:
        return props[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def _env(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    merged.update(globals_env.get("Variables", {}))
    own = template["Resources"][logical_id]["Properties"].get("Environment", {})
    merged.update(own.get("Variables", {}))
    return merged


def _sqs_events(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The processor's SQS event properties keyed by the queue's logical id."""
    events = resources["QueueProcessorFunction"]["Properties"]["Events"]
    out: dict[str, dict[str, Any]] = {}
    for event in events.values():
        if event["Type"] == "SQS":
            queue_id = event["Properties"]["Queue"]["Fn::GetAtt"][0]
            out[queue_id] = event["Properties"]
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM statement in the document, wherever it is nested."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Statement":
                for statement in _as_list(value):
                    if isinstance(statement, dict):
                        yield statement
            yield from _statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from _statements(item)


# --- functions ------------------------------------------------------------------------------


def test_the_four_functions_exist_with_their_code_and_layer(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    functions = {k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions == set(FUNCTIONS)
    for logical_id, code_uri in FUNCTIONS.items():
        assert resources[logical_id]["Properties"]["CodeUri"] == code_uri
        assert _function_property(template, logical_id, "Handler") == "app.handler"
        assert {"Ref": "SharedLayer"} in _function_property(template, logical_id, "Layers")
        assert _function_property(template, logical_id, "Architectures") == ["x86_64"]


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_runtime_is_python_3_12_or_newer(template: dict[str, Any], logical_id: str) -> None:
    runtime = _function_property(template, logical_id, "Runtime")
    match = re.fullmatch(r"python(\d+)\.(\d+)", str(runtime))
    assert match, f"{logical_id}: unexpected runtime {runtime!r}"
    assert (int(match[1]), int(match[2])) >= (3, 12), f"{logical_id}: {runtime} is too old"


def test_shared_layer_is_built_by_its_makefile_for_python_3_12(resources: dict[str, Any]) -> None:
    layer = resources["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/shared/"
    assert "python3.12" in layer["Properties"]["CompatibleRuntimes"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    makefile = LAYER_MAKEFILE.read_text(encoding="utf-8")
    assert re.search(r"^build-SharedLayer:", makefile, re.MULTILINE)
    for flag in (
        "--platform manylinux2014_x86_64",
        "--python-version 3.12",
        "--only-binary=:all:",
    ):
        assert flag in makefile


def test_function_timeouts_and_memory(template: dict[str, Any]) -> None:
    expected = {
        "OrchestratorFunction": 300,
        "QueueProcessorFunction": 120,
        "PremiumExtractorFunction": 60,
        "CommentsExtractorFunction": 60,
    }
    for logical_id, timeout in expected.items():
        assert _function_property(template, logical_id, "Timeout") == timeout
        assert _function_property(template, logical_id, "MemorySize") == 512


def test_vpc_config_only_when_subnets_are_given(template: dict[str, Any]) -> None:
    assert "HasVpc" in template["Conditions"]
    for logical_id in FUNCTIONS:
        vpc = _function_property(template, logical_id, "VpcConfig")
        condition, when_true, when_false = vpc["Fn::If"]
        assert condition == "HasVpc"
        assert when_true["SubnetIds"] == {"Ref": "VpcSubnetIds"}
        assert when_true["SecurityGroupIds"] == {"Ref": "VpcSecurityGroupIds"}
        assert when_false == {"Ref": "AWS::NoValue"}


# --- queues ---------------------------------------------------------------------------------


def test_dead_letter_queue_keeps_messages_14_days(resources: dict[str, Any]) -> None:
    dlq = resources["DeadLetterQueue"]
    assert dlq["Type"] == "AWS::SQS::Queue"
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


@pytest.mark.parametrize("queue_id", SOURCE_QUEUES)
def test_visibility_timeout_is_at_least_six_times_the_processor_timeout(
    template: dict[str, Any], resources: dict[str, Any], queue_id: str
) -> None:
    processor_timeout = _function_property(template, "QueueProcessorFunction", "Timeout")
    assert resources[queue_id]["Properties"]["VisibilityTimeout"] >= 6 * processor_timeout


@pytest.mark.parametrize("queue_id", SOURCE_QUEUES)
def test_source_queues_redrive_to_the_dlq_after_at_least_five_receives(
    resources: dict[str, Any], queue_id: str
) -> None:
    props = resources[queue_id]["Properties"]
    redrive = props["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] >= 5
    assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props


def test_dlq_allows_redrive_from_exactly_its_source_queues(resources: dict[str, Any]) -> None:
    props = resources["DeadLetterQueue"]["Properties"]
    assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props
    policy = props["RedriveAllowPolicy"]
    assert policy["redrivePermission"] in ("byQueue", "allowAll")
    if policy["redrivePermission"] == "byQueue":
        arns = [arn["Fn::Sub"] for arn in policy["sourceQueueArns"]]
        assert len(arns) == len(SOURCE_QUEUES)
        # The ARNs are built from the source queues' fixed names (a GetAtt would be circular).
        for queue_id in SOURCE_QUEUES:
            name = resources[queue_id]["Properties"]["QueueName"]["Fn::Sub"]
            assert any(arn.endswith(f":{name}") for arn in arns), f"{queue_id} not allowed"


def test_high_priority_mapping_gets_more_concurrency_than_backfill(
    resources: dict[str, Any],
) -> None:
    events = _sqs_events(resources)
    assert set(events) == set(SOURCE_QUEUES)
    high = events["HighPriorityQueue"]["ScalingConfig"]["MaximumConcurrency"]
    backfill = events["BackfillQueue"]["ScalingConfig"]["MaximumConcurrency"]
    assert high > backfill >= 2  # Lambda's minimum MaximumConcurrency is 2


def test_both_mappings_report_batch_item_failures(resources: dict[str, Any]) -> None:
    for queue_id, props in _sqs_events(resources).items():
        assert "ReportBatchItemFailures" in props["FunctionResponseTypes"], queue_id
        assert props["BatchSize"] >= 1


def test_orchestrator_runs_every_10_minutes(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    events = resources["OrchestratorFunction"]["Properties"]["Events"]
    schedules = [e for e in events.values() if e["Type"] == "ScheduleV2"]
    assert len(schedules) == 1
    props = schedules[0]["Properties"]
    assert props["ScheduleExpression"] == "rate(10 minutes)"
    assert props["State"] == {"Ref": "ScheduleState"}
    assert _env(template, "OrchestratorFunction")["SCHEDULE_MINUTES"] == "10"


# --- bucket ---------------------------------------------------------------------------------


def test_snapshot_bucket_is_encrypted_private_and_expires_snapshots(
    resources: dict[str, Any],
) -> None:
    props = resources["SnapshotBucket"]["Properties"]
    rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    algorithm = rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    choices = algorithm["Fn::If"][1:] if isinstance(algorithm, dict) else [algorithm]
    assert set(choices) <= {"AES256", "aws:kms"}
    block = props["PublicAccessBlockConfiguration"]
    for key in (
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ):
        assert block[key] is True, key
    assert props["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced"
    lifecycle = props["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and "ExpirationInDays" in r for r in lifecycle)


def test_snapshot_bucket_denies_plain_http(resources: dict[str, Any]) -> None:
    policy = resources["SnapshotBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "SnapshotBucket"}
    denies = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    ]
    assert denies


# --- IAM ------------------------------------------------------------------------------------


def test_no_statement_allows_every_action_on_every_resource(template: dict[str, Any]) -> None:
    statements = list(_statements(template))
    assert len(statements) >= 4, "the walker found too few statements to be trusted"
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action", []))
        resources = _as_list(statement.get("Resource", []))
        assert not ("*" in actions and "*" in resources), statement
        assert "NotAction" not in statement and "NotResource" not in statement, statement


def test_no_function_uses_a_broad_managed_policy(resources: dict[str, Any]) -> None:
    for logical_id in FUNCTIONS:
        for policy in _as_list(resources[logical_id]["Properties"].get("Policies", [])):
            if isinstance(policy, str):
                assert "FullAccess" not in policy and "Administrator" not in policy, policy


def test_processor_may_invoke_both_extractors(resources: dict[str, Any]) -> None:
    policies = resources["QueueProcessorFunction"]["Properties"]["Policies"]
    invoked = {
        p["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for p in policies
        if "LambdaInvokePolicy" in p
    }
    assert invoked == {"PremiumExtractorFunction", "CommentsExtractorFunction"}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_may_read_the_database_secret(
    resources: dict[str, Any], logical_id: str
) -> None:
    policies = resources[logical_id]["Properties"]["Policies"]
    secrets = [
        p["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]
        for p in policies
        if "AWSSecretsManagerGetSecretValuePolicy" in p
    ]
    assert secrets == [{"Ref": "DatabaseSecretArn"}]


# --- environment ----------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_the_shared_environment(
    template: dict[str, Any], logical_id: str
) -> None:
    env = _env(template, logical_id)
    missing = [name for name in SHARED_ENV if name not in env]
    assert not missing, f"{logical_id} lacks {missing}"
    assert env["POWERTOOLS_SERVICE_NAME"] == "bat-backfill"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "BatBackfill"


def test_extractor_names_only_on_the_processor(template: dict[str, Any]) -> None:
    env = _env(template, "QueueProcessorFunction")
    assert env["PREMIUM_EXTRACTOR_FUNCTION"] == {"Ref": "PremiumExtractorFunction"}
    assert env["COMMENTS_EXTRACTOR_FUNCTION"] == {"Ref": "CommentsExtractorFunction"}
    globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
    for name in EXTRACTOR_ENV:
        assert name not in globals_env, f"{name} in Globals makes the extractors circular"


# --- monitoring -----------------------------------------------------------------------------


def test_dead_letter_queue_alarm(resources: dict[str, Any]) -> None:
    alarm = resources["DeadLetterQueueNotEmptyAlarm"]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    props = alarm["Properties"]
    assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert props["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}
    assert props["Threshold"] == 0
    assert props["ComparisonOperator"] == "GreaterThanThreshold"


def test_no_successful_run_alarm(resources: dict[str, Any]) -> None:
    alarm = resources["NoSuccessfulRunAlarm"]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    props = alarm["Properties"]
    assert props["Namespace"] == "BatBackfill"
    assert props["MetricName"] == "OrchestratorRunSucceeded"
    assert props["Dimensions"] == [{"Name": "service", "Value": "bat-backfill"}]
    assert props["Statistic"] == "Sum"
    assert props["Period"] == 600
    assert props["EvaluationPeriods"] == 3
    assert props["Threshold"] == 1
    assert props["ComparisonOperator"] == "LessThanThreshold"
    assert props["TreatMissingData"] == "breaching"


def test_alarm_topic_only_with_an_email(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["AlarmTopic"]["Condition"] == "HasAlarmEmail"
    assert resources["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"


def test_dashboard_shows_every_metric_and_is_valid_json(resources: dict[str, Any]) -> None:
    dashboard = resources["Dashboard"]
    assert dashboard["Type"] == "AWS::CloudWatch::Dashboard"
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    parsed = json.loads(re.sub(r"\$\{[^}]+\}", "placeholder", body))
    metrics = {line[1] for widget in parsed["widgets"] for line in widget["properties"]["metrics"]}
    missing = [m for m in DASHBOARD_METRICS if m not in metrics]
    assert not missing, missing
    for queue_id in (*SOURCE_QUEUES, "DeadLetterQueue"):
        assert f"${{{queue_id}.QueueName}}" in body
    repairs = [w for w in parsed["widgets"] if "FieldsRepaired" in json.dumps(w)]
    assert repairs[0]["properties"]["period"] == 3600


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    values = [json.dumps(o["Value"]) for o in outputs.values()]
    for logical_id in (*SOURCE_QUEUES, "DeadLetterQueue", "SnapshotBucket", *FUNCTIONS):
        assert json.dumps({"Ref": logical_id}) in values, logical_id
    assert "DashboardUrl" in outputs


# --- samconfig ------------------------------------------------------------------------------


def test_samconfig() -> None:
    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    default = config["default"]
    assert default["global"]["parameters"]["stack_name"] == "bat-backfill"
    assert default["global"]["parameters"]["region"] == "us-east-1"
    assert default["build"]["parameters"] == {"cached": True, "parallel": True}
    deploy = default["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True
    assert deploy["resolve_s3"] is True
    # `lint = true` here would turn `make template-check`'s plain `sam validate` into a lint
    # run, and cfn-lint misses SAM event property typos that the plain validation catches.
    assert "lint" not in default.get("validate", {}).get("parameters", {})


# --- security -------------------------------------------------------------------------------


def _skips(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for logical_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            out.append((logical_id, skip))
    return out


def test_every_checkov_skip_names_a_check_and_gives_a_reason(template: dict[str, Any]) -> None:
    skips = _skips(template)
    assert skips, "the walker found no skips: the template layout changed"
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
        assert len(str(skip.get("comment", "")).split()) >= 8, (logical_id, skip)


def test_concurrency_is_reserved_and_bounds_the_processor_and_extractors(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    reserved = {fn: resources[fn]["Properties"]["ReservedConcurrentExecutions"] for fn in FUNCTIONS}
    assert reserved["OrchestratorFunction"] == 1
    mappings = sum(
        e["ScalingConfig"]["MaximumConcurrency"] for e in _sqs_events(resources).values()
    )
    # The mappings must never be throttled by the function's own reservation.
    assert reserved["QueueProcessorFunction"] >= mappings
    for fn in ("PremiumExtractorFunction", "CommentsExtractorFunction"):
        assert reserved[fn] == {"Ref": "ExtractorConcurrency"}
    param = template["Parameters"]["ExtractorConcurrency"]
    assert param["MinValue"] >= 1
    assert param["Default"] >= reserved["QueueProcessorFunction"]


def test_snapshot_bucket_keeps_versions_and_expires_old_ones(resources: dict[str, Any]) -> None:
    props = resources["SnapshotBucket"]["Properties"]
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any(r["NoncurrentVersionExpiration"]["NoncurrentDays"] >= 1 for r in rules)


def test_the_optional_kms_key_reaches_every_encrypted_resource(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    assert template["Parameters"]["KmsKeyArn"]["Default"] == ""
    by_key = {"Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
    assert template["Globals"]["Function"]["KmsKeyArn"] == by_key
    for queue_id in (*SOURCE_QUEUES, "DeadLetterQueue"):
        props = resources[queue_id]["Properties"]
        assert props["KmsMasterKeyId"] == by_key
        assert props["SqsManagedSseEnabled"]["Fn::If"][2] is True  # SSE-SQS without a key
    assert resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == by_key
    groups = [r for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == len(FUNCTIONS)
    assert all(g["Properties"]["KmsKeyId"] == by_key for g in groups)
    for fn in FUNCTIONS:
        conditional = [
            p["Fn::If"] for p in resources[fn]["Properties"]["Policies"] if "Fn::If" in p
        ]
        assert any(c[0] == "HasKmsKey" for c in conditional), fn


def test_env_example_only_sets_variables_the_template_declares(template: dict[str, Any]) -> None:
    example = json.loads((ROOT / "env.example.json").read_text(encoding="utf-8"))
    assert example["Parameters"]["DATABASE_URL"].startswith("postgresql://")
    assert example["Parameters"]["DATABASE_SECRET_ARN"] == ""  # or the secret would win
    for section, names in example.items():
        targets = FUNCTIONS if section == "Parameters" else [section]
        for fn in targets:
            declared = _env(template, fn)
            missing = [n for n in names if n not in declared]
            assert not missing, f"{fn}: SAM would ignore {missing}"
