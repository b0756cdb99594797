//! Outage notices through the real code path: a SQLite marketing database, the directory's
//! customer streams, a real store file, templates from the config defaults.

mod marketing_outages_common;

use gridsms::clock::Clock;
use gridsms::message::Category;
use gridsms::store::contacts::{self, BindingStatus, ContactSource};
use gridsms::store::outages::OutageSpec;
use gridsms::templates::Templates;
use marketing_outages_common::{Site, at};

fn p(n: &str) -> String {
    format!("+86{n}")
}

fn feeder_spec(feeder: &str) -> OutageSpec {
    OutageSpec {
        feeder: Some(feeder.into()),
        areas: vec![],
        area_text: Some("城关镇东街一带".into()),
        station: None,
        start: at(30, 8, 0),
        end: at(30, 18, 0),
        reason: Some("线路检修".into()),
    }
}

/// Feeder F1: a phone on two accounts, one without phone, one invalid; F2 elsewhere.
async fn feeder_site() -> Site {
    Site::new(&[
        ("A1", "张三", Some("13800138001"), "F1", "T1"),
        ("A2", "李四", Some("138 0013 8001"), "F1", "T1"),
        ("A3", "王五", Some("13900139002"), "F1", "T2"),
        ("A4", "赵六", None, "F1", "T2"),
        ("A5", "钱七", Some("12345"), "F1", "T3"),
        ("A6", "孙八", Some("13700137003"), "F2", "T3"),
    ])
    .await
}

#[tokio::test]
async fn feeder_outage_one_notice_per_phone_skips_counted_expires_at_start() {
    let site = feeder_site().await;
    let t = Templates::default();
    let r = site
        .desk
        .create_manual(feeder_spec("F1"), "desk", &t)
        .await
        .unwrap();
    assert_eq!(r.recipients, 2, "{r:?}");
    assert_eq!(r.skipped.get("duplicate"), Some(&1));
    assert_eq!(r.skipped.get("no_phone"), Some(&1));
    assert_eq!(r.skipped.get("invalid_phone"), Some(&1));
    let msgs = site.messages().await;
    let mut to: Vec<&str> = msgs.iter().map(|m| m.0.as_str()).collect();
    to.sort();
    assert_eq!(to, vec![p("13800138001"), p("13900139002")]);
    for (_, text, state, key, expires) in &msgs {
        assert_eq!(state, "queued");
        assert!(key.starts_with(&format!("outage:{}:v1:planned:", r.outage_id)));
        assert_eq!(*expires, Some(at(30, 8, 0).timestamp_millis()));
        assert!(text.starts_with("【某某供电公司】尊敬的"), "{text}");
        assert!(
            text.contains("因线路检修，定于11月30日08:00至18:00对城关镇东街一带"),
            "{text}"
        );
        assert!(!text.contains("回复TD退订"), "{text}");
    }
    // Priority 0 (outage) in the outbox.
    let prio: i64 = site
        .store
        .call(|c| Ok(c.query_row("SELECT max(priority) FROM messages", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(prio, 0);
    // Announcing again (a retried request, a resumed announcement) sends nothing new.
    let again = site.desk.announce(r.outage_id, &t).await.unwrap();
    assert_eq!(again.recipients, 0);
    assert_eq!(again.skipped.get("duplicate"), Some(&3));
    let expired = site.store.expire_due(at(30, 8, 1)).await.unwrap();
    assert_eq!(expired, 2, "notices expire at the outage start");
}

#[tokio::test]
async fn area_outage_deduplicates_across_areas_and_adds_local_bindings() {
    let site = feeder_site().await;
    let now = site.clock.now();
    let bound: gridsms::phone::E164 = "13600136009".parse().unwrap();
    let pending: gridsms::phone::E164 = "13600136008".parse().unwrap();
    let (b1, b2) = (bound.clone(), pending.clone());
    site.store
        .call(move |c| {
            contacts::upsert_binding(
                c,
                &b1,
                "A3",
                ContactSource::Sms,
                BindingStatus::Active,
                None,
                now,
            )?;
            contacts::upsert_binding(
                c,
                &b2,
                "A3",
                ContactSource::Sms,
                BindingStatus::Pending,
                None,
                now,
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let mut spec = feeder_spec("unused");
    spec.feeder = None;
    spec.areas = vec!["T1".into(), "T2".into(), "T3".into()];
    let r = site
        .desk
        .create_manual(spec, "desk", &Templates::default())
        .await
        .unwrap();
    let mut to: Vec<String> = site.messages().await.into_iter().map(|m| m.0).collect();
    to.sort();
    assert_eq!(
        to,
        vec![
            p("13600136009"),
            p("13700137003"),
            p("13800138001"),
            p("13900139002")
        ]
    );
    assert_eq!(r.recipients, 4);
    assert_eq!(r.skipped.get("duplicate"), Some(&1));
}

#[tokio::test]
async fn opt_outs_are_honoured_per_category() {
    let site = feeder_site().await;
    let now = site.clock.now();
    let (a, b): (gridsms::phone::E164, gridsms::phone::E164) = (
        "13800138001".parse().unwrap(),
        "13900139002".parse().unwrap(),
    );
    site.store
        .call(move |c| {
            contacts::opt_out(c, &a, Some(Category::Outage), "sms", now)?;
            contacts::opt_out(c, &b, Some(Category::Bill), "sms", now)?;
            Ok(())
        })
        .await
        .unwrap();
    let r = site
        .desk
        .create_manual(feeder_spec("F1"), "desk", &Templates::default())
        .await
        .unwrap();
    assert_eq!(r.recipients, 1);
    assert_eq!(r.skipped.get("opted_out"), Some(&1));
    let to: Vec<String> = site.messages().await.into_iter().map(|m| m.0).collect();
    assert_eq!(to, vec![p("13900139002")]);
}

#[tokio::test]
async fn day_before_reminder_goes_once_to_phones_told_on_an_earlier_day() {
    let site = feeder_site().await;
    let t = Templates::default();
    let six_pm = chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap();
    site.desk
        .create_manual(feeder_spec("F1"), "desk", &t)
        .await
        .unwrap();
    site.mark_all_sent().await;
    site.clock.set(at(29, 17, 59));
    assert_eq!(site.desk.send_reminders(six_pm, &t).await.unwrap(), 0);
    // A second outage announced on the 29th, after 18:00: told today, no reminder.
    site.clock.set(at(29, 17, 59));
    let mut late = feeder_spec("F2");
    late.start = at(30, 9, 0);
    late.end = at(30, 11, 0);
    site.desk.create_manual(late, "desk", &t).await.unwrap();
    site.clock.set(at(29, 18, 0));
    assert_eq!(site.desk.send_reminders(six_pm, &t).await.unwrap(), 2);
    let reminded = site.recipients("reminder").await;
    assert_eq!(reminded, vec![p("13800138001"), p("13900139002")]);
    let texts: Vec<String> = site
        .messages()
        .await
        .into_iter()
        .filter(|m| m.3.contains(":reminder:"))
        .map(|m| m.1)
        .collect();
    assert!(texts[0].contains("温馨提醒"), "{}", texts[0]);
    site.clock.set(at(29, 20, 0));
    assert_eq!(
        site.desk.send_reminders(six_pm, &t).await.unwrap(),
        0,
        "once"
    );
}

#[tokio::test]
async fn polled_outage_change_and_cancellation_reach_exactly_those_told() {
    let site = feeder_site().await;
    let t = Templates::default();
    site.marketing_sql(
        "INSERT INTO outages VALUES ('OUT-1', 'F1', NULL, '2026-11-30 08:00:00',
         '2026-11-30 18:00:00', '线路检修', '城关镇东街一带', 'planned', '2026-11-28 09:00:00'),
         ('OUT-0', 'F1', NULL, '2026-11-20 08:00:00', '2026-11-20 12:00:00', '检修', NULL,
          'planned', '2026-11-19 09:00:00'),
         ('BAD', NULL, NULL, '2026-11-30 08:00:00', '2026-11-30 18:00:00', NULL, NULL, NULL,
          '2026-11-28 09:00:00');",
    );
    let r = site.desk.poll(&t).await.unwrap();
    assert_eq!((r.rows, r.new, r.queued), (3, 2, 2), "{r:?}");
    assert_eq!(r.skipped.get("no_feeder_or_areas"), Some(&1));
    assert_eq!(
        site.recipients("planned").await.len(),
        2,
        "a past outage is not announced"
    );
    // Polling again changes nothing.
    let again = site.desk.poll(&t).await.unwrap();
    assert_eq!(again.queued, 0);
    // One notice went out, the other is still queued when the time changes; a customer joins
    // the feeder after the announcement.
    site.store
        .call(|c| {
            c.execute(
                "UPDATE messages SET state = 'sent' WHERE recipient = '+8613800138001'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    site.marketing_sql(
        "INSERT INTO customers VALUES ('A9', '新户', '13500135000', 'F1', 'T1', '33011201');
         UPDATE outages SET start_time = '2026-11-30 09:00:00', end_time = '2026-11-30 17:00:00',
           updated_at = '2026-11-28 11:00:00' WHERE id = 'OUT-1';",
    );
    site.clock.set(at(28, 11, 5));
    let r = site.desk.poll(&t).await.unwrap();
    assert_eq!((r.changed, r.queued), (1, 2), "{r:?}");
    assert_eq!(site.recipients("changed").await, vec![p("13800138001")]);
    let msgs = site.messages().await;
    let changed = msgs.iter().find(|m| m.3.contains(":changed:")).unwrap();
    assert!(
        changed.1.contains("调整为11月30日09:00至17:00"),
        "{}",
        changed.1
    );
    assert_eq!(changed.4, Some(at(30, 9, 0).timestamp_millis()));
    // The phone whose old notice never left: old one cancelled, new planned notice instead.
    let for_other: Vec<_> = msgs.iter().filter(|m| m.0 == p("13900139002")).collect();
    assert_eq!(for_other.len(), 2);
    assert_eq!(for_other[0].2, "cancelled");
    assert!(
        for_other[1].3.contains(":v2:planned:"),
        "{}",
        for_other[1].3
    );
    assert!(
        !msgs.iter().any(|m| m.0 == p("13500135000")),
        "never told, never changed"
    );

    // Cancelled at the source: everyone reached hears it, once.
    site.mark_all_sent().await;
    site.marketing_sql(
        "UPDATE outages SET status = '取消', updated_at = '2026-11-28 12:00:00' WHERE id = 'OUT-1';",
    );
    site.clock.set(at(28, 12, 5));
    let r = site.desk.poll(&t).await.unwrap();
    assert_eq!((r.cancelled, r.queued), (1, 2), "{r:?}");
    assert_eq!(
        site.recipients("cancelled").await,
        vec![p("13800138001"), p("13900139002")]
    );
    let text = &site
        .messages()
        .await
        .into_iter()
        .find(|m| m.3.contains(":cancelled:"))
        .unwrap()
        .1;
    assert!(
        text.contains("原定11月30日09:00至17:00城关镇东街一带（F1）的计划停电已取消"),
        "{text}"
    );
    assert_eq!(site.desk.poll(&t).await.unwrap().queued, 0);
}

#[tokio::test]
async fn manual_cancellation_notifies_the_told_and_voids_queued_notices() {
    let site = feeder_site().await;
    let t = Templates::default();
    let r = site
        .desk
        .create_manual(feeder_spec("F1"), "desk", &t)
        .await
        .unwrap();
    site.store
        .call(|c| {
            c.execute(
                "UPDATE messages SET state = 'sent' WHERE recipient = '+8613800138001'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let c = site.desk.cancel(r.outage_id, &t).await.unwrap().unwrap();
    assert_eq!(c.recipients, 1);
    assert_eq!(site.recipients("cancelled").await, vec![p("13800138001")]);
    let states: Vec<(String, String)> = site
        .messages()
        .await
        .into_iter()
        .filter(|m| m.3.contains(":planned:"))
        .map(|m| (m.0, m.2))
        .collect();
    assert!(
        states.contains(&(p("13900139002"), "cancelled".into())),
        "{states:?}"
    );
    let twice = site.desk.cancel(r.outage_id, &t).await.unwrap().unwrap();
    assert_eq!(twice.recipients, 0);
    assert!(site.desk.cancel(9999, &t).await.unwrap().is_none());
    let outage = site.desk.get(r.outage_id).await.unwrap().unwrap();
    assert_eq!(
        outage.status,
        gridsms::store::outages::OutageStatus::Cancelled
    );
    assert_eq!(outage.told, 2);
}

#[tokio::test]
async fn large_feeder_is_streamed_in_batches() {
    let rows: Vec<(String, String)> = (0..1_200)
        .map(|i| (format!("B{i:05}"), format!("1380000{i:04}")))
        .collect();
    let refs: Vec<(&str, &str, Option<&str>, &str, &str)> = rows
        .iter()
        .map(|(a, ph)| (a.as_str(), "客户", Some(ph.as_str()), "BIG", "T9"))
        .collect();
    let site = Site::new(&refs).await;
    let r = site
        .desk
        .create_manual(feeder_spec("BIG"), "desk", &Templates::default())
        .await
        .unwrap();
    assert_eq!(r.recipients, 1_200);
    assert_eq!(site.messages().await.len(), 1_200);
}
