"""The blog post's CircleCI push flow, written for this project's tests.

"Pushing Docker Images from CircleCI to ECR using IAM Roles" pushes with a
short boto3 + docker-py script. This file does the same steps so that the
end-to-end tests can prove containerise and that flow are interchangeable
(both push with the variables `containerise setup` prints), and so that
`make bench` has the blog's way to measure against:

  1. assume the role AWS_IAM_ROLE_ARN with STS, signing with the CI user's
     keys AWS_IAM_USER_ACCESS_KEY_ID / AWS_IAM_USER_SECRET_ACCESS_KEY; the STS
     client takes its region the way boto3 does, from AWS_DEFAULT_REGION;
  2. ask ECR in AWS_REGION for an authorization token with the role's
     temporary credentials;
  3. build the Dockerfile of a folder through the Docker engine (docker-py,
     DOCKER_HOST), tagged <registry>/<repository>:<tag>;
  4. push that tag, handing the ECR credentials to the engine with the push
     request itself (no login, nothing written to a Docker config file).

Usage: python blogflow.py [--repository NAME] [--tag TAG] [FOLDER]
FOLDER is the build context holding the Dockerfile (default: the working
directory); the repository and tag default to the blog's, circleci-ecr-test
and v1.

Build and push progress goes to stderr. On success, stdout has one line,
<registry>/<repository>:<tag>@sha256:<digest>, as containerise push prints.
Any error in the build or push stream exits 1; a missing variable exits 2.
"""

import argparse
import base64
import os
import sys
import time

import boto3
import botocore.exceptions
import docker
import docker.errors


class FlowError(Exception):
    """A step failed; the message says which and why."""


def required_env(name):
    value = os.environ.get(name, "")
    if not value:
        print(f"blogflow: {name} is not set: use the value containerise setup printed", file=sys.stderr)
        sys.exit(2)
    return value


def role_credentials(access_key_id, secret_access_key, role_arn):
    """Step 1: the role's temporary credentials, via STS with the user's keys."""
    sts = boto3.client("sts", aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key)
    answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=f"blogflow-{int(time.time())}")
    return answer["Credentials"]


def ecr_login(credentials, region):
    """Step 2: the registry host and its user name and password."""
    ecr = boto3.client(
        "ecr",
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    registry = data["proxyEndpoint"].split("://", 1)[-1].rstrip("/")
    return registry, {"username": user, "password": password}


def follow(stream, step):
    """Relays an engine JSON stream to stderr; raises on the first error in it."""
    last = {}
    for message in stream:
        if "error" in message or "errorDetail" in message:
            detail = message.get("errorDetail", {}).get("message") or message.get("error")
            raise FlowError(f"{step} failed: {detail}")
        # Byte-count updates ("progress") would flood a CI log; the rest is
        # what docker build and docker push show.
        text = message.get("stream") or ("progress" not in message and message.get("status"))
        if text and text.strip():
            layer = f"{message['id']}: " if "id" in message else ""
            print(f"{layer}{text.rstrip()}", file=sys.stderr)
        last.update(message.get("aux") or {})
    return last


def build_and_push(engine, folder, image, tag, auth):
    """Steps 3 and 4: build FOLDER as image:tag, push it, return its digest."""
    follow(engine.api.build(path=folder, tag=f"{image}:{tag}", rm=True, decode=True), f"building {folder}")
    aux = follow(engine.api.push(image, tag=tag, auth_config=auth, stream=True, decode=True), f"pushing {image}:{tag}")
    digest = aux.get("Digest")
    if not digest:
        raise FlowError(f"pushing {image}:{tag}: the engine reported no digest")
    return digest


def main(argv):
    parser = argparse.ArgumentParser(description="Push a folder's image to ECR the way the blog post does.")
    parser.add_argument("folder", nargs="?", default=".", help="build context with the Dockerfile (default: the working directory)")
    parser.add_argument("--repository", default="circleci-ecr-test", help="ECR repository (default: %(default)s)")
    parser.add_argument("--tag", default="v1", help="image tag (default: %(default)s)")
    args = parser.parse_args(argv)

    access_key_id = required_env("AWS_IAM_USER_ACCESS_KEY_ID")
    secret_access_key = required_env("AWS_IAM_USER_SECRET_ACCESS_KEY")
    role_arn = required_env("AWS_IAM_ROLE_ARN")
    region = required_env("AWS_REGION")
    try:
        registry, auth = ecr_login(role_credentials(access_key_id, secret_access_key, role_arn), region)
        image = f"{registry}/{args.repository}"
        digest = build_and_push(docker.from_env(), os.path.abspath(args.folder), image, args.tag, auth)
    except (FlowError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, docker.errors.DockerException) as err:
        print(f"blogflow: {err}", file=sys.stderr)
        return 1
    print(f"{image}:{args.tag}@{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
