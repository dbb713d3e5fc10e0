// sessionkit/sink/nats/detail/outcome.hpp — what nats.c's answer about one
// published message means for nats_sink: stored, a duplicate, a permanent
// refusal (dead-lettered, the batch goes on), or a failure that a retry can
// fix (the batch fails). Pure functions over nats.c's structs: unit-tested
// without a server.
//
// Permanent (retrying the same message gets the same answer):
//   - nats.c refuses it before sending: larger than the server's
//     max_payload (NATS_MAX_PAYLOAD), or an invalid subject;
//   - no responders: no stream takes in the subject (the stream was
//     deleted or its subjects changed under us);
//   - a JetStream error about the message itself: larger than the stream's
//     max_msg_size (10054), headers over 64 KiB (10097), a sealed stream
//     (10109), a bad request (10003), and the expectation mismatches
//     (10056, 10060, 10063, 10070, 10071; nats_sink sets no expectations).
// Everything else fails the batch so that the relay retries it: a timeout,
// a lost or closed connection, and every other JetStream error (storage
// or resource limits, no leader, stream offline, and codes we do not
// know): an operator can fix those, and the outbox keeps the events
// until then.
#pragma once

#include <sessionkit/sink/nats/detail/tracker.hpp>

#include <nats/nats.h>

#include <string>
#include <string_view>

namespace sessionkit::detail::nats {

/// JetStream error codes that refuse the message itself.
constexpr bool permanent_jetstream_error(int code) noexcept {
    switch (code) {
    case 10003:  // JSBadRequestErr
    case 10054:  // JSStreamMessageExceedsMaximumErr: over the stream's max_msg_size
    case 10056:  // JSStreamMismatchErr
    case 10060:  // JSStreamNotMatchErr: Nats-Expected-Stream
    case 10063:  // JSStreamSequenceNotMatchErr
    case 10070:  // JSStreamWrongLastMsgIDErr
    case 10071:  // JSStreamWrongLastSequenceErr
    case 10097:  // JSStreamHeaderExceedsMaximumErr (newer than nats.c 3.4.1's list)
    case 10109:  // JSStreamSealedErr
        return true;
    default: return false;
    }
}

/// nats.c's answer for one asynchronously published message (the ack
/// handler's `pa` or `pae`, exactly one of them set).
inline message_outcome classify_ack(const jsPubAck* pa, const jsPubAckErr* pae) {
    if (pa) return {pa->Duplicate ? outcome_kind::duplicate : outcome_kind::stored, {}};
    if (!pae) return {outcome_kind::unavailable, "nats.c reported neither an acknowledgement nor an error"};
    const std::string text = pae->ErrText && *pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
    if (pae->Err == NATS_TIMEOUT) return {outcome_kind::timeout, "no acknowledgement from JetStream in time"};
    if (pae->Err == NATS_NO_RESPONDERS)
        return {outcome_kind::refused, "no responders: no JetStream stream takes in the subject"};
    if (pae->ErrCode != 0) {
        const int code = static_cast<int>(pae->ErrCode);
        return {permanent_jetstream_error(code) ? outcome_kind::refused : outcome_kind::unavailable,
                "JetStream error " + std::to_string(code) + ": " + text};
    }
    return {outcome_kind::unavailable, text};
}

/// js_PublishMsgAsync returned `s` (not NATS_OK): the message was not sent.
/// `text` is nats.c's last error (nats_GetLastError).
inline message_outcome classify_publish_status(natsStatus s, std::string_view text) {
    std::string reason = "nats.c could not send it: ";
    reason += text.empty() ? std::string_view(natsStatus_GetText(s)) : text;
    switch (s) {
    case NATS_MAX_PAYLOAD:
    case NATS_INVALID_SUBJECT: return {outcome_kind::refused, std::move(reason)};
    default: return {outcome_kind::unavailable, std::move(reason)};
    }
}

}  // namespace sessionkit::detail::nats
