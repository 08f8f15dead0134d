#!/usr/bin/env bash
# Stand-in for the parts of bashio (hassio-addons/bashio lib/) that the add-on's scripts use,
# with the same behaviour: options read with jq from ADDON_CONFIG (default /data/options.json),
# `null` for an option that is not set, logs on stderr, exit.nok logging its first argument and
# exiting 1. bashio::discovery appends "SERVICE CONFIG" to BASHIO_STANDIN_DISCOVERY instead of
# calling the Supervisor.

readonly __BASHIO_ADDON_CONFIG="${ADDON_CONFIG:-/data/options.json}"

bashio::log.log() {
    echo -e "[$(date +%T)] ${1}: ${2}" >&2
}
bashio::log.info() { bashio::log.log INFO "$*"; }
bashio::log.warning() { bashio::log.log WARNING "$*"; }
bashio::log.error() { bashio::log.log ERROR "$*"; }
bashio::log.fatal() { bashio::log.log FATAL "$*"; }

bashio::exit.nok() {
    local message=${1:-}
    if [[ -n "${message}" ]]; then
        bashio::log.fatal "${message}"
    fi
    exit 1
}

# The query of bashio's lib/config.sh.
bashio::config() {
    local key=${1}
    jq --raw-output "
        if (.${key} == null) then
            null
        elif (.${key} | type == \"string\") then
            .${key} // empty
        elif (.${key} | type == \"boolean\") then
            .${key} // false
        elif (.${key} | type == \"array\") then
            if (.${key} == []) then empty else .${key}[] end
        elif (.${key} | type == \"object\") then
            if (.${key} == {}) then empty else .${key} end
        else
            .${key}
        end" "${__BASHIO_ADDON_CONFIG}"
}

bashio::config.has_value() {
    local value
    value=$(bashio::config "${1}")
    [[ "${value}" != "null" && -n "${value}" ]]
}

bashio::config.true() {
    [[ "$(bashio::config "${1}")" == "true" ]]
}

# lib/var.sh: key/value pairs to a JSON object; values prefixed with ^ go in unquoted.
bashio::var.json() {
    local json='' separator counter=0 item
    for item in "$@"; do
        separator=","
        if [ $((++counter % 2)) -eq 0 ]; then
            separator=":"
        fi
        if [[ "${item:0:1}" == "^" ]]; then
            json="${json}${separator}${item:1}"
        else
            json="${json}${separator}\"${item}\""
        fi
    done
    echo "{${json:1}}"
}

bashio::discovery() {
    echo "${1} ${2}" >> "${BASHIO_STANDIN_DISCOVERY:?}"
}
