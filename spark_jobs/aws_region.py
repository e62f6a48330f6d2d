"""The region every boto3 client of the jobs is created in, explicitly.

Without one, boto3 falls back to its own configuration chain: on EMR Serverless there is no ~/.aws/config, so a
client either fails late with botocore's NoRegionError or (S3) talks to the global endpoint, which a job in a
VPC without internet access cannot reach. A job takes the region from its `--region` option (the state machines
pass the stack's region), else from AWS_REGION / AWS_DEFAULT_REGION, and refuses to guess.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


class NoRegionError(ValueError):
    """No region given and none in the environment."""


def aws_region(region: str | None = None, *, needed_for: str, environ: Mapping[str, str] = os.environ) -> str:
    """`region`, else AWS_REGION, else AWS_DEFAULT_REGION; NoRegionError naming what needed it otherwise."""
    value = region or next((environ[name] for name in REGION_VARIABLES if environ.get(name)), None)
    if not value:
        raise NoRegionError(f"no AWS region for {needed_for}: pass --region or set AWS_REGION")
    return value
