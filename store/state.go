package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SaveConversation implements Store.
func (s *sqlStore) SaveConversation(ctx context.Context, ref ConversationReference) error {
	if ref.ConversationID == "" {
		return errors.New("save conversation reference: ConversationID is empty")
	}

	var reference any
	if len(ref.Reference) > 0 {
		reference = string(ref.Reference)
	}
	_, err := s.db.ExecContext(ctx, s.dialect.bind(`
		INSERT INTO conversations (conversation_id, kind, service_url, tenant_id, bot_id, team_id, group_id, teams_channel_id, reference, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (conversation_id) DO UPDATE SET
			kind = excluded.kind,
			service_url = excluded.service_url,
			tenant_id = excluded.tenant_id,
			bot_id = excluded.bot_id,
			team_id = excluded.team_id,
			group_id = excluded.group_id,
			teams_channel_id = excluded.teams_channel_id,
			reference = excluded.reference,
			updated_at = excluded.updated_at`),
		ref.ConversationID, ref.Kind, ref.ServiceURL, ref.TenantID, ref.BotID,
		ref.TeamID, ref.GroupID, ref.TeamsChannelID, reference, s.dialect.timeValue(ref.UpdatedAt),
	)
	if err != nil {
		return fmt.Errorf("save conversation reference %q: %w", ref.ConversationID, err)
	}
	return nil
}

// Conversations implements Store.
func (s *sqlStore) Conversations(ctx context.Context, kind string) ([]ConversationReference, error) {
	query := `
		SELECT conversation_id, kind, service_url, tenant_id, bot_id, team_id, group_id, teams_channel_id, reference, updated_at
		FROM conversations`
	var args []any
	if kind != "" {
		query += ` WHERE kind = ?`
		args = append(args, kind)
	}
	query += ` ORDER BY conversation_id`

	rows, err := s.db.QueryContext(ctx, s.dialect.bind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list conversation references of kind %q: %w", kind, err)
	}
	defer rows.Close()

	refs := []ConversationReference{}
	for rows.Next() {
		var (
			ref       ConversationReference
			reference *string
		)
		err := rows.Scan(&ref.ConversationID, &ref.Kind, &ref.ServiceURL, &ref.TenantID, &ref.BotID,
			&ref.TeamID, &ref.GroupID, &ref.TeamsChannelID, &reference, timeScanner{&ref.UpdatedAt})
		if err != nil {
			return nil, fmt.Errorf("list conversation references of kind %q: %w", kind, err)
		}
		if reference != nil {
			ref.Reference = []byte(*reference)
		}
		refs = append(refs, ref)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list conversation references of kind %q: %w", kind, err)
	}
	return refs, nil
}

// DeleteConversation implements Store.
func (s *sqlStore) DeleteConversation(ctx context.Context, conversationID string) error {
	_, err := s.db.ExecContext(ctx, s.dialect.bind(`DELETE FROM conversations WHERE conversation_id = ?`), conversationID)
	if err != nil {
		return fmt.Errorf("delete conversation reference %q: %w", conversationID, err)
	}
	return nil
}

// SeenActivity implements Store. The upsert replaces only an expired row,
// so of two replicas that insert the same id at once exactly one changes a
// row.
func (s *sqlStore) SeenActivity(ctx context.Context, activityID string, now time.Time, ttl time.Duration) (bool, error) {
	if activityID == "" {
		return false, errors.New("record activity id: id is empty")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("record activity id %q: ttl %v is not positive", activityID, ttl)
	}

	result, err := s.db.ExecContext(ctx, s.dialect.bind(`
		INSERT INTO seen_activities (activity_id, expires_at) VALUES (?, ?)
		ON CONFLICT (activity_id) DO UPDATE SET expires_at = excluded.expires_at
		WHERE seen_activities.expires_at <= ?`),
		activityID, s.dialect.timeValue(now.Add(ttl)), s.dialect.timeValue(now),
	)
	if err != nil {
		return false, fmt.Errorf("record activity id %q: %w", activityID, err)
	}
	return changedOneRow(result, fmt.Sprintf("record activity id %q", activityID))
}

// TryLease implements Store.
func (s *sqlStore) TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" {
		return false, fmt.Errorf("acquire lease %q for %q: name and holder must not be empty", name, holder)
	}
	if ttl <= 0 {
		return false, fmt.Errorf("acquire lease %q for %q: ttl %v is not positive", name, holder, ttl)
	}

	result, err := s.db.ExecContext(ctx, s.dialect.bind(`
		INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`),
		name, holder, s.dialect.timeValue(now.Add(ttl)), s.dialect.timeValue(now),
	)
	if err != nil {
		return false, fmt.Errorf("acquire lease %q for %q: %w", name, holder, err)
	}
	return changedOneRow(result, fmt.Sprintf("acquire lease %q for %q", name, holder))
}

// ReleaseLease implements Store.
func (s *sqlStore) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.db.ExecContext(ctx, s.dialect.bind(`DELETE FROM leases WHERE name = ? AND holder = ?`), name, holder)
	if err != nil {
		return fmt.Errorf("release lease %q for %q: %w", name, holder, err)
	}
	return nil
}

// RecordSend implements Store.
func (s *sqlStore) RecordSend(ctx context.Context, key, conversationID string, now time.Time, retryAfter time.Duration) (Send, bool, error) {
	if key == "" {
		return Send{}, false, errors.New("record send: key is empty")
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Send{}, false, fmt.Errorf("record send %q: begin transaction: %w", key, err)
	}
	defer tx.Rollback()

	insert := `
		INSERT INTO sends (send_key, conversation_id, recorded_at, completed_at, activity_id)
		VALUES (?, ?, ?, NULL, '')`
	args := []any{key, conversationID, s.dialect.timeValue(now)}
	if retryAfter > 0 {
		insert += `
		ON CONFLICT (send_key) DO UPDATE SET conversation_id = excluded.conversation_id, recorded_at = excluded.recorded_at
		WHERE sends.completed_at IS NULL AND sends.recorded_at <= ?`
		args = append(args, s.dialect.timeValue(now.Add(-retryAfter)))
	} else {
		insert += `
		ON CONFLICT (send_key) DO NOTHING`
	}
	result, err := tx.ExecContext(ctx, s.dialect.bind(insert), args...)
	if err != nil {
		return Send{}, false, fmt.Errorf("record send %q: %w", key, err)
	}
	claimed, err := changedOneRow(result, fmt.Sprintf("record send %q", key))
	if err != nil {
		return Send{}, false, err
	}

	send := Send{Key: key}
	err = tx.QueryRowContext(ctx, s.dialect.bind(`
		SELECT conversation_id, recorded_at, completed_at, activity_id FROM sends WHERE send_key = ?`), key,
	).Scan(&send.ConversationID, timeScanner{&send.RecordedAt}, timeScanner{&send.CompletedAt}, &send.ActivityID)
	if err != nil {
		return Send{}, false, fmt.Errorf("record send %q: read record: %w", key, err)
	}

	if err := tx.Commit(); err != nil {
		return Send{}, false, fmt.Errorf("record send %q: commit: %w", key, err)
	}
	return send, claimed, nil
}

// CompleteSend implements Store.
func (s *sqlStore) CompleteSend(ctx context.Context, key, activityID string, now time.Time) error {
	result, err := s.db.ExecContext(ctx, s.dialect.bind(`
		UPDATE sends SET completed_at = ?, activity_id = ? WHERE send_key = ?`),
		s.dialect.timeValue(now), activityID, key,
	)
	if err != nil {
		return fmt.Errorf("complete send %q: %w", key, err)
	}
	updated, err := changedOneRow(result, fmt.Sprintf("complete send %q", key))
	if err != nil {
		return err
	}
	if !updated {
		return fmt.Errorf("complete send %q: %w", key, ErrNotFound)
	}
	return nil
}

// changedOneRow reports whether a statement inserted or updated a row.
// operation names the statement in the error.
func changedOneRow(result sql.Result, operation string) (bool, error) {
	n, err := result.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: read affected rows: %w", operation, err)
	}
	return n == 1, nil
}
