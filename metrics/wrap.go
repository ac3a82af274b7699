package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/storagebot/storagebot/scanner"
)

// maxErrorBody bounds how much of a Bot Connector error body is read to find
// its code. Error bodies are a code and a message.
const maxErrorBody = 64 << 10

// errorCodePattern accepts a Bot Framework error code such as
// BotNotInConversationRoster. Anything else is counted as codeNone, so that
// a body cannot create label values without bound.
var errorCodePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,63}$`)

// Webhook returns gin middleware that counts the POST requests of the
// routes it wraps and times each until its response is written. Activities
// arrive only by POST, so other methods on the same routes, such as a file
// download, are not counted.
func (m *Metrics) Webhook() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Method != http.MethodPost {
			c.Next()
			return
		}
		started := time.Now()
		c.Next()

		code := strconv.Itoa(c.Writer.Status())
		m.webhookRequests.WithLabelValues(code).Inc()
		m.webhookDuration.WithLabelValues(code).Observe(time.Since(started).Seconds())
	}
}

// GraphTransport returns next wrapped to count Graph requests by status
// code. A nil next means http.DefaultTransport.
func (m *Metrics) GraphTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := transportOrDefault(next).RoundTrip(req)
		if err != nil {
			m.graphRequests.WithLabelValues(statusNetworkError).Inc()
			return nil, err
		}
		m.graphRequests.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
		return resp, nil
	})
}

// ConnectorTransport returns next wrapped to count failed Bot Connector
// requests by status and by the error.code of the Bot Framework
// ErrorResponse body, which it reads and puts back for the client. A nil
// next means http.DefaultTransport.
func (m *Metrics) ConnectorTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := transportOrDefault(next).RoundTrip(req)
		if err != nil {
			m.connectorErrors.WithLabelValues(statusNetworkError, codeNone).Inc()
			return nil, err
		}
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			return resp, nil
		}

		body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body = readBackBody{Reader: io.MultiReader(bytes.NewReader(body), resp.Body), Closer: resp.Body}
		code := codeNone
		if readErr == nil {
			code = errorCode(body)
		}
		m.connectorErrors.WithLabelValues(strconv.Itoa(resp.StatusCode), code).Inc()
		return resp, nil
	})
}

// Scan returns scan wrapped to time each scan by result and to keep the
// Team counts per outcome of the last complete one.
func (m *Metrics) Scan(scan func(ctx context.Context) (*scanner.Result, error)) func(ctx context.Context) (*scanner.Result, error) {
	return func(ctx context.Context) (*scanner.Result, error) {
		started := time.Now()
		result, err := scan(ctx)
		elapsed := time.Since(started).Seconds()

		switch {
		case err == nil && result != nil:
			m.scanDuration.WithLabelValues(scanComplete).Observe(elapsed)
			m.setScanTeams(result)
		case errors.Is(err, context.Canceled):
			m.scanDuration.WithLabelValues(scanCanceled).Observe(elapsed)
		default:
			m.scanDuration.WithLabelValues(scanFailed).Observe(elapsed)
		}
		return result, err
	}
}

// setScanTeams replaces the per-outcome gauges with result's counts, so an
// outcome that no longer occurs drops to zero.
func (m *Metrics) setScanTeams(result *scanner.Result) {
	counts := make(map[scanner.Outcome]int)
	for _, team := range result.Teams {
		counts[team.Outcome]++
	}
	for _, outcome := range []scanner.Outcome{
		scanner.OutcomeMeasured, scanner.OutcomeUnknown, scanner.OutcomeNoDrive,
		scanner.OutcomeForbidden, scanner.OutcomeFailed,
	} {
		m.scanTeams.WithLabelValues(string(outcome)).Set(float64(counts[outcome]))
		delete(counts, outcome)
	}
	for outcome, n := range counts {
		m.scanTeams.WithLabelValues(string(outcome)).Set(float64(n))
	}
}

// errorCode returns error.code of a Bot Framework ErrorResponse body, or
// codeNone.
func errorCode(body []byte) string {
	var response struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &response) != nil || !errorCodePattern.MatchString(response.Error.Code) {
		return codeNone
	}
	return response.Error.Code
}

// readBackBody is a response body whose start was read and is served again.
type readBackBody struct {
	io.Reader
	io.Closer
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func transportOrDefault(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}
