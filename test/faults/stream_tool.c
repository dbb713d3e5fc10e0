/* stream_tool -- reads (or, for the harness's own tests, fills) a whole
 * JetStream stream, for the event fault tests (test/faults).
 *
 *   stream_tool dump URL STREAM
 *       One JSON line with the stream's state, then one JSON line per
 *       message, by stream sequence from the first to the last:
 *         {"stream":S,"first_seq":F,"last_seq":L,"messages":N,"deleted":D}
 *         {"seq":1,"subject":"sessions.created.a%2Eb","msg_id":"...","data":"<payload>"}
 *       A sequence with no message (deleted or never stored) is
 *         {"seq":N,"missing":true}
 *       Exit 0 when the whole stream was read, 1 on any error (named on stderr).
 *
 *   stream_tool publish URL STREAM
 *       Creates STREAM (subjects sessions.>, file storage) when absent, then
 *       publishes each stdin line "SUBJECT<TAB>MSG_ID<TAB>PAYLOAD" with the
 *       header Nats-Msg-Id = MSG_ID (an empty MSG_ID: no header) and waits for
 *       JetStream's acknowledgement. Prints "published P duplicates D".
 *
 * Reading message by message (js_GetMsg, the stream's direct "get" API) sees
 * every stored message exactly as the stream holds it, with no consumer
 * state to go wrong, and needs no Asio: it compiles in a second.
 */
#include <nats/nats.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_json_string(FILE* out, const char* s, int len) {
    int i;
    fputc('"', out);
    for (i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(out, "\\u%04x", c);
            else
                fputc(c, out); /* UTF-8 bytes pass through: JSON text is UTF-8 */
        }
    }
    fputc('"', out);
}

static int fail(const char* what, natsStatus s, jsErrCode jerr) {
    fprintf(stderr, "stream_tool: %s: %s (status %d, JetStream error %d)\n", what, natsStatus_GetText(s), (int)s,
            (int)jerr);
    nats_PrintLastErrorStack(stderr);
    return 1;
}

static int dump(jsCtx* js, const char* stream) {
    jsStreamInfo* si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
    uint64_t seq, first, last;
    if (s != NATS_OK) return fail("stream info", s, jerr);
    first = si->State.FirstSeq;
    last = si->State.LastSeq;
    printf("{\"stream\":");
    put_json_string(stdout, stream, (int)strlen(stream));
    printf(",\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64 ",\"messages\":%" PRIu64 ",\"deleted\":%" PRIu64 "}\n",
           first, last, si->State.Msgs, si->State.NumDeleted);
    jsStreamInfo_Destroy(si);
    if (first == 0) return 0; /* an empty stream */
    for (seq = first; seq <= last; ++seq) {
        natsMsg* msg = NULL;
        const char* id = NULL;
        jerr = 0;
        s = js_GetMsg(&msg, js, stream, seq, NULL, &jerr);
        if (s == NATS_NOT_FOUND) {
            printf("{\"seq\":%" PRIu64 ",\"missing\":true}\n", seq);
            continue;
        }
        if (s != NATS_OK) {
            char what[64];
            snprintf(what, sizeof what, "get message %" PRIu64, seq);
            return fail(what, s, jerr);
        }
        printf("{\"seq\":%" PRIu64 ",\"subject\":", seq);
        put_json_string(stdout, natsMsg_GetSubject(msg), (int)strlen(natsMsg_GetSubject(msg)));
        printf(",\"msg_id\":");
        if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != NULL)
            put_json_string(stdout, id, (int)strlen(id));
        else
            printf("null");
        printf(",\"data\":");
        put_json_string(stdout, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
        printf("}\n");
        natsMsg_Destroy(msg);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

static int publish(jsCtx* js, const char* stream) {
    jsStreamInfo* si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
    char line[65536];
    long published = 0, duplicates = 0;
    if (s == NATS_NOT_FOUND) {
        jsStreamConfig cfg;
        const char* subjects[] = {"sessions.>"};
        jsStreamConfig_Init(&cfg);
        cfg.Name = stream;
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        jerr = 0;
        s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    }
    if (s != NATS_OK) return fail("stream info / add stream", s, jerr);
    jsStreamInfo_Destroy(si);
    while (fgets(line, sizeof line, stdin)) {
        char* subject = line;
        char* id = strchr(line, '\t');
        char* payload = id ? strchr(id + 1, '\t') : NULL;
        natsMsg* msg = NULL;
        jsPubAck* ack = NULL;
        size_t n;
        if (!payload) {
            fprintf(stderr, "stream_tool: a line without SUBJECT<TAB>MSG_ID<TAB>PAYLOAD\n");
            return 1;
        }
        *id++ = '\0';
        *payload++ = '\0';
        n = strlen(payload);
        if (n && payload[n - 1] == '\n') payload[--n] = '\0';
        s = natsMsg_Create(&msg, subject, NULL, payload, (int)n);
        if (s == NATS_OK && *id) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
        jerr = 0;
        if (s == NATS_OK) s = js_PublishMsg(&ack, js, msg, NULL, &jerr);
        natsMsg_Destroy(msg);
        if (s != NATS_OK) return fail("publish", s, jerr);
        ++published;
        if (ack->Duplicate) ++duplicates;
        jsPubAck_Destroy(ack);
    }
    printf("published %ld duplicates %ld\n", published, duplicates);
    return 0;
}

int main(int argc, char** argv) {
    natsConnection* nc = NULL;
    natsOptions* opts = NULL;
    jsCtx* js = NULL;
    natsStatus s;
    int rc;
    if (argc != 4 || (strcmp(argv[1], "dump") != 0 && strcmp(argv[1], "publish") != 0)) {
        fprintf(stderr, "usage: stream_tool dump|publish URL STREAM\n");
        return 2;
    }
    s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetURL(opts, argv[2]);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 5000);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
    if (s != NATS_OK) return fail("connect", s, 0);
    s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) return fail("JetStream context", s, 0);
    rc = strcmp(argv[1], "dump") == 0 ? dump(js, argv[3]) : publish(js, argv[3]);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return rc;
}
