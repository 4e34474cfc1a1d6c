// AWS credentials and region as the AWS tools (and duplicity's boto3) find them: the one place
// they are read.
//
// Credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) from the
// environment; else the profile AWS_PROFILE (else AWS_DEFAULT_PROFILE, else "default") in
// AWS_SHARED_CREDENTIALS_FILE (else ~/.aws/credentials, section [NAME]) and then in
// AWS_CONFIG_FILE (else ~/.aws/config, section [profile NAME], or [default]): keys
// aws_access_key_id, aws_secret_access_key, aws_session_token.
// Region: AWS_REGION, AWS_DEFAULT_REGION, then the profile's `region` in the config file.
#pragma once

#include <functional>
#include <string>

#include "backends/aws_sigv4.h"
#include "backends/base/error.h"

namespace dupfs {

struct AwsConfig {
  AwsCredentials credentials;
  std::string region;   // empty: none found
  std::string profile;  // the profile looked in, for messages
};

// `getenv` returns a variable's value or null. kAuth naming what was looked at when no access
// key is found; kInvalidArgument when a profile was asked for by name and exists nowhere.
Result<AwsConfig> load_aws_config(const std::function<const char*(const char*)>& getenv,
                                  const std::string& home);

}  // namespace dupfs
